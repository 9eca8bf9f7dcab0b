import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { gcra, slidingWindow, type Decision, type SlidingWindowState } from '../../src/limit/algorithms';
import { MemoryLimitStore } from '../../src/limit/memoryLimitStore';
import { RedisLimitStore } from '../../src/limit/redisLimitStore';
import type { LimitResult, LimitStore } from '../../src/limit/store';
import type { StoredKey } from '../../src/auth/keyStore';
import { quotaPeriod } from '../../src/limit/calendar';
import { DenyCache } from '../../src/limit/denyCache';
import { Limiter, type LimitDecision } from '../../src/limit/limiter';
import type { Counter, Plan, PlanResult } from '../../src/limit/plan';
import type { KeyLimits } from '../../src/limit/planLimits';
import { parseTiers } from '../../src/limit/tiers';
import { counters, plan, singleCounterStore, type LimitRequest, type SingleCounterStore } from '../support/limitPlans';
import type { Algorithm } from '../../src/limit/tiers';
import { sleep } from '../support/processes';
import { startRedis } from '../support/redis';
import { startRedisCluster } from '../support/redisCluster';

/*
 * One behaviour suite for every LimitStore backend (STYLE habit 4): the in-process store
 * with a fake clock, RedisLimitStore on a real redis-server, and RedisLimitStore on a
 * three-master Redis Cluster. SPEC §2: a burst of N from a fresh key is allowed exactly
 * min(N, limit) times across instances sharing the store; Redis's clock is the clock.
 */

interface LimitStoreFixture {
  /** Stores sharing one backend, as gateway instances sharing Redis do (memory: one store), asked one counter at a time. */
  readonly stores: readonly SingleCounterStore[];
  /** The same stores, asked whole plans. */
  readonly raw: readonly LimitStore[];
  /** About the store clock's current time (to keep bursts away from window edges). */
  now(): number;
  /** Lets `ms` pass on the store's clock: a fake clock for memory, real time for Redis. */
  wait(ms: number): Promise<void>;
  /**
   * A store of the same backend whose clock reads about `instantMs` now (memory: a second
   * store with its own fake clock, set exactly; Redis: the script's test-only clock offset,
   * so within a few ms). Stores from repeated calls share their counters.
   */
  storeAt(instantMs: number): LimitStore;
  close(): Promise<void>;
}

const MINUTE = 60_000;
const ALGORITHMS: readonly Algorithm[] = ['sliding-window', 'gcra'];

/** The pure algorithms, fed the store's own `nowMs`: what every store must answer. */
class PureModel {
  private readonly windows = new Map<string, SlidingWindowState>();
  private readonly tats = new Map<string, number>();

  answer(req: LimitRequest, nowMs: number, counts: boolean): Decision {
    const key = `${req.algorithm}:${req.id}`;
    if (req.algorithm === 'gcra') {
      const { decision, nextTat } = gcra(this.tats.get(key) ?? null, nowMs, req.limit, req.windowMs);
      if (counts && nextTat !== null) this.tats.set(key, nextTat);
      return decision;
    }
    const { decision, next } = slidingWindow(this.windows.get(key) ?? null, nowMs, req.limit, req.windowMs);
    if (counts && next !== null) this.windows.set(key, next);
    return decision;
  }
}

type Step = { kind: 'decide' | 'peek'; req: LimitRequest } | { kind: 'wait'; ms: number };

/** Runs the steps one after another on one store; the results of decide and peek steps, in order. */
async function runSequence(fx: LimitStoreFixture, steps: readonly Step[]): Promise<LimitResult[]> {
  const store = fx.stores[0];
  const results: LimitResult[] = [];
  for (const step of steps) {
    if (step.kind === 'wait') await fx.wait(step.ms);
    else results.push(step.kind === 'decide' ? await store.decide(step.req) : await store.peek(step.req));
  }
  return results;
}

function decisionOf(r: LimitResult): Decision {
  return { allowed: r.allowed, remaining: r.remaining, resetMs: r.resetMs, retryAtMs: r.retryAtMs };
}

/** Every result equals what the pure algorithm gives for the same request at the store's nowMs. */
function expectPureAgreement(steps: readonly Step[], results: readonly LimitResult[]): void {
  const model = new PureModel();
  const calls = steps.filter((s): s is Exclude<Step, { kind: 'wait' }> => s.kind !== 'wait');
  expect(results).toHaveLength(calls.length);
  calls.forEach((step, i) => {
    const expected = model.answer(step.req, results[i].nowMs, step.kind === 'decide');
    expect({ i, step: step.kind, limit: step.req.limit, got: decisionOf(results[i]) }).toEqual({
      i, step: step.kind, limit: step.req.limit, got: expected,
    });
  });
}

/** All N decisions in flight at once, spread over the fixture's stores. */
function concurrently(fx: LimitStoreFixture, n: number, req: LimitRequest): Promise<LimitResult[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => fx.stores[i % fx.stores.length].decide(req)));
}

/** Sliding windows are epoch-aligned; a burst is meant to stay inside one. */
async function awayFromWindowEdge(fx: LimitStoreFixture, windowMs: number, marginMs: number): Promise<void> {
  const left = windowMs - (fx.now() % windowMs);
  if (left < marginMs) await fx.wait(left + 20);
}

/** Polls with `decide` (a denial counts nothing) until allowed; fails after `boundMs`. */
async function decideUntilAllowed(fx: LimitStoreFixture, req: LimitRequest, boundMs: number): Promise<LimitResult> {
  for (let waited = 0; waited <= boundMs; waited += 10) {
    const r = await fx.stores[0].decide(req);
    if (r.allowed) return r;
    await fx.wait(10);
  }
  throw new Error(`${req.algorithm} ${req.id} not allowed again within ${boundMs} ms`);
}

function describeLimitStoreContract(name: string, makeFixture: () => Promise<LimitStoreFixture>): void {
  describe(`LimitStore contract: ${name}`, () => {
    let fixture: LimitStoreFixture | undefined;
    beforeAll(async () => {
      fixture = await makeFixture();
    });
    afterAll(async () => {
      await fixture?.close();
    });
    function fx(): LimitStoreFixture {
      if (fixture === undefined) throw new Error(`${name} fixture did not start`);
      return fixture;
    }

    describe.each(ALGORITHMS)('%s', (algorithm) => {
      const freshId = (label: string): string => `${label}-${randomUUID()}`;
      const request = (id: string, limit: number, windowMs = MINUTE): LimitRequest => ({ id, algorithm, limit, windowMs });

      test.each([20, 150])('a fresh id is allowed exactly min(N, limit) of N = limit + 5 concurrent decisions (limit %i)', async (limit) => {
        await awayFromWindowEdge(fx(), MINUTE, 2000);
        const results = await concurrently(fx(), limit + 5, request(freshId('burst'), limit));
        const allowed = results.filter((r) => r.allowed);
        expect(allowed).toHaveLength(limit);
        // Each allowed decision saw a different count: remaining took every value limit − 1 .. 0 once.
        expect(allowed.map((r) => r.remaining).sort((a, b) => a - b)).toEqual(Array.from({ length: limit }, (_, i) => i));
        for (const denied of results.filter((r) => !r.allowed)) {
          expect(denied.remaining).toBe(0);
          expect(denied.retryAtMs).toBeGreaterThan(denied.nowMs);
        }
      });

      test('fewer requests than the limit are all allowed', async () => {
        await awayFromWindowEdge(fx(), MINUTE, 2000);
        const results = await concurrently(fx(), 17, request(freshId('under'), 20));
        expect(results.every((r) => r.allowed)).toBe(true);
      });

      test('remaining, reset and retry times are those of the pure algorithm, decision by decision', async () => {
        await awayFromWindowEdge(fx(), MINUTE, 2000);
        const id = freshId('pure');
        const steps: Step[] = [
          ...Array.from({ length: 23 }, (): Step => ({ kind: 'decide', req: request(id, 20) })),
          { kind: 'peek', req: request(id, 20) },
          { kind: 'peek', req: request(id, 150) },
        ];
        const results = await runSequence(fx(), steps);
        expectPureAgreement(steps, results);
        expect(results.slice(0, 20).map((r) => r.remaining)).toEqual(Array.from({ length: 20 }, (_, i) => 19 - i));
        for (const r of results) {
          if (algorithm === 'sliding-window') {
            // The end of the epoch-aligned window.
            expect(r.resetMs % MINUTE).toBe(0);
            expect(r.resetMs).toBeGreaterThan(r.nowMs);
            expect(r.resetMs).toBeLessThanOrEqual(r.nowMs + MINUTE);
          } else {
            // When the bucket is full again: at most one window away.
            expect(r.resetMs).toBeGreaterThan(r.nowMs);
            expect(r.resetMs).toBeLessThanOrEqual(r.nowMs + MINUTE);
          }
        }
      });

      test('peek counts nothing', async () => {
        await awayFromWindowEdge(fx(), MINUTE, 2000);
        const req = request(freshId('peek'), 20);
        const peeks = await Promise.all(Array.from({ length: 50 }, () => fx().stores[0].peek(req)));
        for (const p of peeks) expect(p).toMatchObject({ allowed: true, remaining: 19 });
        const results = await concurrently(fx(), 25, req);
        expect(results.filter((r) => r.allowed)).toHaveLength(20);
        expect(await fx().stores[0].peek(req)).toMatchObject({ allowed: false, remaining: 0 });
      });

      test('ids are independent', async () => {
        await awayFromWindowEdge(fx(), MINUTE, 2000);
        const a = request(freshId('a'), 20);
        const b = request(freshId('b'), 20);
        expect((await concurrently(fx(), 25, a)).filter((r) => r.allowed)).toHaveLength(20);
        expect(await fx().stores[0].peek(b)).toMatchObject({ allowed: true, remaining: 19 });
        expect((await concurrently(fx(), 25, b)).filter((r) => r.allowed)).toHaveLength(20);
        expect((await fx().stores[0].decide(a)).allowed).toBe(false);
      });

      test('denied requests count nothing: remaining stays 0, the retry time does not move, and at it one is allowed', async () => {
        // Limit 5 per second: the first retry comes about 200 ms after the burst for both algorithms.
        const windowMs = 1000;
        await awayFromWindowEdge(fx(), windowMs, 400);
        const req = request(freshId('denied'), 5, windowMs);
        expect((await concurrently(fx(), 5, req)).every((r) => r.allowed)).toBe(true);
        const first = await fx().stores[0].decide(req);
        expect(first.allowed).toBe(false);
        const more = await concurrently(fx(), 20, req);
        expect(more.every((r) => !r.allowed)).toBe(true);
        const peek = await fx().stores[0].peek(req);
        expect(peek).toMatchObject({ allowed: false, remaining: 0, retryAtMs: first.retryAtMs });

        await fx().wait(first.retryAtMs - peek.nowMs + 20);
        const again = await fx().stores[0].decide(req);
        expect(again.allowed).toBe(true);
        expect(again.nowMs).toBeGreaterThanOrEqual(first.retryAtMs);
        // Only one came back.
        expect((await fx().stores[0].decide(req)).allowed).toBe(false);
      });

      test('a lower limit for the same id (NORMAL → DEGRADED) applies at once', async () => {
        await awayFromWindowEdge(fx(), MINUTE, 2000);
        // Used up at 20: denied at 2 straight away.
        const exhausted = freshId('degraded');
        expect((await concurrently(fx(), 20, request(exhausted, 20))).every((r) => r.allowed)).toBe(true);
        expect(await fx().stores[0].decide(request(exhausted, 2))).toMatchObject({ allowed: false, remaining: 0 });
        expect(await fx().stores[0].peek(request(exhausted, 2))).toMatchObject({ allowed: false, remaining: 0 });

        // One used at 20: exactly one more at 2, as the pure algorithm says.
        const id = freshId('degraded-partial');
        const steps: Step[] = [
          { kind: 'decide', req: request(id, 20) },
          { kind: 'decide', req: request(id, 2) },
          { kind: 'decide', req: request(id, 2) },
          { kind: 'decide', req: request(id, 2) },
          { kind: 'peek', req: request(id, 20) },
        ];
        const results = await runSequence(fx(), steps);
        expect(results.slice(0, 4).map((r) => r.allowed)).toEqual([true, true, false, false]);
        expect(results[1].remaining).toBe(0);
        expectPureAgreement(steps, results);
      });
    });

    describe('gcra refills', () => {
      test('limit 5 per second: the next request comes back about 200 ms after a burst, the whole bucket at resetMs', async () => {
        const req: LimitRequest = { id: `refill-${randomUUID()}`, algorithm: 'gcra', limit: 5, windowMs: 1000 };
        const burst: LimitResult[] = [];
        for (let i = 0; i < 5; i++) burst.push(await fx().stores[0].decide(req));
        expect(burst.every((r) => r.allowed)).toBe(true);
        const denial = await fx().stores[0].decide(req);
        expect(denial.allowed).toBe(false);
        // One token every 1000 / 5 = 200 ms (at most 1 ms early, for rounding).
        expect(denial.retryAtMs - burst[0].nowMs).toBeGreaterThanOrEqual(199);
        expect(denial.retryAtMs - burst[0].nowMs).toBeLessThanOrEqual(200);

        const back = await decideUntilAllowed(fx(), req, 3000);
        expect(back.nowMs).toBeGreaterThanOrEqual(denial.retryAtMs);
        expect(back.remaining).toBe(0);
        expect((await fx().stores[0].decide(req)).allowed).toBe(false);

        // Full again at resetMs: a burst of 6 gets 5.
        const peek = await fx().stores[0].peek(req);
        await fx().wait(back.resetMs - peek.nowMs + 20);
        expect((await concurrently(fx(), 6, req)).filter((r) => r.allowed)).toHaveLength(5);
      });
    });
  });
}

/** The same sequence on a Redis store and on MemoryLimitStore driven by Redis's clock: identical answers. */
function describeAgreementWithMemory(name: string, makeFixture: () => Promise<LimitStoreFixture>): void {
  describe(`${name} agrees with MemoryLimitStore decision for decision`, () => {
    let fixture: LimitStoreFixture | undefined;
    beforeAll(async () => {
      fixture = await makeFixture();
    });
    afterAll(async () => {
      await fixture?.close();
    });

    test.each(ALGORITHMS)('%s', async (algorithm) => {
      const redisFx = fixture;
      if (redisFx === undefined) throw new Error(`${name} fixture did not start`);
      await awayFromWindowEdge(redisFx, MINUTE, 3000);
      const id = `agree-${randomUUID()}`;
      const shortId = `agree-short-${randomUUID()}`;
      const at = (limit: number, windowMs = MINUTE, who = id): LimitRequest => ({ id: who, algorithm, limit, windowMs });
      const steps: Step[] = [
        ...Array.from({ length: 23 }, (): Step => ({ kind: 'decide', req: at(20) })),
        { kind: 'peek', req: at(20) },
        ...Array.from({ length: 3 }, (): Step => ({ kind: 'decide', req: at(2) })),
        { kind: 'peek', req: at(150) },
        ...Array.from({ length: 4 }, (): Step => ({ kind: 'decide', req: at(150) })),
        ...Array.from({ length: 7 }, (): Step => ({ kind: 'decide', req: at(5, 1000, shortId) })),
        { kind: 'wait', ms: 250 },
        ...Array.from({ length: 3 }, (): Step => ({ kind: 'decide', req: at(5, 1000, shortId) })),
        { kind: 'wait', ms: 450 },
        ...Array.from({ length: 4 }, (): Step => ({ kind: 'decide', req: at(5, 1000, shortId) })),
      ];
      const fromRedis = await runSequence(redisFx, steps);

      let now = 0;
      const memoryStore = new MemoryLimitStore(() => now);
      const memory = singleCounterStore(memoryStore);
      try {
        const calls = steps.filter((s): s is Exclude<Step, { kind: 'wait' }> => s.kind !== 'wait');
        const fromMemory: LimitResult[] = [];
        for (let i = 0; i < calls.length; i++) {
          now = fromRedis[i].nowMs;
          const step = calls[i];
          fromMemory.push(step.kind === 'decide' ? await memory.decide(step.req) : await memory.peek(step.req));
        }
        const summary = (rs: LimitResult[]) => rs.map((r) => `${r.allowed ? 'allow' : 'deny'}:${r.remaining}`);
        expect(summary(fromRedis)).toEqual(summary(fromMemory));
        expect(fromRedis).toEqual(fromMemory);
      } finally {
        memoryStore.close();
      }
    });
  });
}


/** SPEC §9: plans of several counters, decided in one atomic step on every backend. */
function describeMultiCounterContract(name: string, makeFixture: () => Promise<LimitStoreFixture>): void {
  describe(`LimitStore contract, multi-counter plans: ${name}`, () => {
    let fixture: LimitStoreFixture | undefined;
    beforeAll(async () => {
      fixture = await makeFixture();
    });
    afterAll(async () => {
      await fixture?.close();
    });
    function fx(): LimitStoreFixture {
      if (fixture === undefined) throw new Error(`${name} fixture did not start`);
      return fixture;
    }
    const freshId = (label: string): string => `${label}-${randomUUID()}`;
    /** All N decisions in flight at once, spread over the fixture's stores. */
    const burst = (p: Plan, n: number): Promise<PlanResult[]> => Promise.all(Array.from({ length: n }, (_, i) => fx().raw[i % fx().raw.length].decide(p)));
    /** Clear of both a second's and a minute's edge. */
    async function awayFromEdges(): Promise<void> {
      await awayFromWindowEdge(fx(), MINUTE, 2500);
      await awayFromWindowEdge(fx(), 1000, 400);
    }

    describe.each(ALGORITHMS)('%s', (algorithm) => {
      const main = (limit: number, windowMs = MINUTE): Counter => counters.rate('t', algorithm, limit, windowMs, 'rate');
      const perSecond = (limit: number): Counter => counters.rate('t-1s', algorithm, limit, 1000, 'window');

      test('all or nothing: a burst of 40 meets 20/min and 5/s: exactly 5 allowed, and only those 5 count in the minute', async () => {
        await awayFromEdges();
        const id = freshId('all');
        const results = await burst(plan(id, [main(20), perSecond(5)]), 40);
        expect(results.filter((r) => r.allowed)).toHaveLength(5);
        for (const r of results.filter((x) => !x.allowed)) {
          expect(r.binding).toBe(1);
          expect(r.retryAtMs).toBeGreaterThan(r.nowMs);
          // gcra: a token within 1 s; sliding window: once the weighted previous second has decayed, within 2.
          expect(r.retryAtMs - r.nowMs).toBeLessThanOrEqual(algorithm === 'gcra' ? 1000 : 2000);
        }
        // The minute window alone (same subject, same store key): 5 counted, so 15 left, 14 after a peeked one.
        expect(await fx().raw[0].peek(plan(id, [main(20)]))).toMatchObject({ allowed: true, remaining: 14 });
      });

      test('a refused request counts nowhere: the quota sees only the 3 the main window allowed, and the window only the 2 the quota allowed', async () => {
        await awayFromEdges();
        const a = plan(freshId('nowhere'), [main(3), counters.quota('t-quota', 100, 'day')]);
        const results: PlanResult[] = [];
        for (let i = 0; i < 10; i++) results.push(await fx().raw[0].decide(a));
        expect(results.map((r) => r.allowed)).toEqual([true, true, true, false, false, false, false, false, false, false]);
        expect(await fx().raw[0].changeQuota(a, null)).toMatchObject({ limit: 100, used: 3, remaining: 97 });

        const id = freshId('nowhere-q');
        const b = plan(id, [main(20), counters.quota('t-quota', 2, 'day')]);
        expect((await burst(b, 12)).filter((r) => r.allowed)).toHaveLength(2);
        expect(await fx().raw[0].peek(plan(id, [main(20)]))).toMatchObject({ allowed: true, remaining: 17 });
      });

      test('counts outlive a changed plan: a removed window leaves the others\' counts, and the single-window fast path rolling its window over does not expire the quota', async () => {
        await awayFromEdges();
        const id = freshId('outlive');
        const quota = counters.quota('t-quota', 100, 'day');
        const perHour = counters.rate('t-3600s', algorithm, 50, 3_600_000, 'window');
        for (let i = 0; i < 3; i++) expect((await fx().raw[0].decide(plan(id, [main(10, 1000), perHour, quota]))).allowed).toBe(true);
        // The reload drops the hour window: the main and the quota keep their 3.
        const noHour = plan(id, [main(10, 1000), quota]);
        expect(await fx().raw[0].peek(noHour)).toMatchObject({ allowed: true, remaining: 6 });
        expect(await fx().raw[0].changeQuota(noHour, null)).toMatchObject({ used: 3 });
        // Then only the main window (the one-counter fast path) for three of its windows, across two rollovers.
        for (let i = 0; i < 3; i++) {
          await fx().wait(1100);
          expect((await fx().raw[0].decide(plan(id, [main(10, 1000)]))).allowed).toBe(true);
        }
        await fx().wait(2200);
        expect(await fx().raw[0].changeQuota(noHour, null)).toMatchObject({ used: 3 });
        // The hour window comes back with its count.
        expect(await fx().raw[0].peek(plan(id, [main(10, 1000), perHour, quota]))).toMatchObject({ allowed: true, counters: [9, expect.any(Number), 46, expect.any(Number), 96, expect.any(Number)] });
      });

      test('Retry-After when a different counter binds: the 1 s window refuses while the minute has room; at the retry time one is allowed', async () => {
        await awayFromEdges();
        const p = plan(freshId('binds'), [main(100), perSecond(2)]);
        for (let i = 0; i < 2; i++) expect((await fx().raw[0].decide(p)).allowed).toBe(true);
        const denied = await fx().raw[0].decide(p);
        expect(denied).toMatchObject({ allowed: false, binding: 1 });
        // As things stand: the minute window has 98 free, the second none.
        expect(denied.counters[0]).toBe(98);
        expect(denied.counters[2]).toBe(0);
        expect(denied.retryAtMs).toBeGreaterThan(denied.nowMs);
        expect(denied.retryAtMs - denied.nowMs).toBeLessThanOrEqual(algorithm === 'gcra' ? 1000 : 2000);
        await fx().wait(denied.retryAtMs - denied.nowMs + 20);
        const again = await fx().raw[0].decide(p);
        expect(again.allowed).toBe(true);
        expect(again.nowMs).toBeGreaterThanOrEqual(denied.retryAtMs);
      });

      test('two counters refuse: the later retry binds (the quota, until 00:00 UTC)', async () => {
        await awayFromEdges();
        const p = plan(freshId('two'), [main(2), counters.quota('t-quota', 2, 'day')]);
        expect((await burst(p, 2)).every((r) => r.allowed)).toBe(true);
        const denied = await fx().raw[0].decide(p);
        expect(denied).toMatchObject({ allowed: false, binding: 1, retryAtMs: quotaPeriod('day', 0, denied.nowMs).endMs });
      });

      test('cost N counts N in every counter and needs N free in each', async () => {
        await awayFromEdges();
        const id = freshId('cost');
        const p = plan(id, [main(10), perSecond(6)], 3);
        const first = await fx().raw[0].decide(p);
        expect(first).toMatchObject({ allowed: true, counters: [7, first.counters[1], 3, first.counters[3]] });
        const second = await fx().raw[0].decide(p);
        expect(second).toMatchObject({ allowed: true, binding: 1 });
        expect([second.counters[0], second.counters[2]]).toEqual([4, 0]);
        const third = await fx().raw[0].decide(p);
        expect(third).toMatchObject({ allowed: false, binding: 1 });
        // Nothing of the refused 3 counted: the minute has 4 free, 3 after a peeked one.
        expect(await fx().raw[0].peek(plan(id, [main(10)]))).toMatchObject({ allowed: true, remaining: 3 });
      });
    });

    test('identity sharing: keys of one identity with different limits count in one set of counters', async () => {
      await awayFromEdges();
      const subject = `i:${freshId('acme')}`;
      const small = plan(subject, [counters.rate('free', 'sliding-window', 5, MINUTE, 'rate')]);
      const large = plan(subject, [counters.rate('pro', 'sliding-window', 12, MINUTE, 'rate')]);
      expect((await burst(small, 8)).filter((r) => r.allowed)).toHaveLength(5);
      // Each judged by its own limits, over the shared count: 12 − 5 = 7 more for the larger.
      expect((await burst(large, 10)).filter((r) => r.allowed)).toHaveLength(7);
      expect((await fx().raw[0].decide(small)).allowed).toBe(false);
    });

    test('per-key overrides through the limiter: a key\'s limits replace its tier\'s for it alone', async () => {
      await awayFromEdges();
      const parsed = parseTiers({ tiers: { pro: { limit: 5, windows: [{ limit: 3, windowSeconds: 1 }], quota: { limit: 1000, period: 'day' } } } });
      if (!parsed.ok) throw new Error(parsed.reasons.join('; '));
      const local = new MemoryLimitStore(() => fx().now());
      const limiter = new Limiter({
        store: fx().raw[0], breaker: null, local, denyCache: new DenyCache(() => fx().now()), failureMode: 'local', clock: () => fx().now(), onFallback: () => undefined,
      }, parsed.tiers);
      const key = (id: string, limits?: KeyLimits): StoredKey => ({ id, tier: 'pro', name: id, disabled: false, createdAt: new Date().toISOString(), hash: id, ...(limits ? { limits } : {}) });
      const plain = key(freshId('plain'));
      const custom = key(freshId('custom'), { burst: 8, windows: [], quota: null });
      const run = async (k: StoredKey): Promise<LimitDecision[]> => {
        const out: LimitDecision[] = [];
        for (let i = 0; i < 10; i++) {
          const planned = limiter.request(k, 'NORMAL');
          if (planned === null) throw new Error('no plan');
          out.push(await limiter.decide(planned));
        }
        return out;
      };
      const a = await run(plain);
      expect(a.filter((d) => d.result.allowed)).toHaveLength(3);
      expect(a[9].plan.template.counters.map((c) => c.name)).toEqual(['pro', 'pro-1s', 'pro-quota']);
      const b = await run(custom);
      expect(b.filter((d) => d.result.allowed)).toHaveLength(8);
      expect(b[9].plan.template.counters.map((c) => `${c.name}:${c.limit}`)).toEqual(['pro:8']);
      local.close();
    });

    test.each([
      // [period, anchor day, the boundary]: 31-, 30-, 28- and 29-day months, a year's end, anchors clamped.
      ['day', 0, '2027-03-14T00:00:00.000Z'],
      ['month', 1, '2027-02-01T00:00:00.000Z'],
      ['month', 1, '2027-05-01T00:00:00.000Z'],
      ['month', 1, '2027-03-01T00:00:00.000Z'],
      ['month', 1, '2028-03-01T00:00:00.000Z'],
      ['month', 1, '2028-01-01T00:00:00.000Z'],
      ['month', 31, '2027-02-28T00:00:00.000Z'],
      ['month', 31, '2027-03-31T00:00:00.000Z'],
      ['month', 31, '2027-04-30T00:00:00.000Z'],
      ['month', 30, '2028-02-29T00:00:00.000Z'],
      ['month', 29, '2027-02-28T00:00:00.000Z'],
      ['month', 15, '2027-01-15T00:00:00.000Z'],
    ] as const)('quota rollover: %s, anchor %i, at %s', async (period, anchor, boundaryIso) => {
      const boundary = Date.parse(boundaryIso);
      const p = plan(freshId('rollover'), [counters.quota('t-quota', 2, period, anchor)]);
      const before = fx().storeAt(boundary - 1500);
      expect((await before.decide(p)).allowed).toBe(true);
      expect((await before.decide(p)).allowed).toBe(true);
      const denied = await before.decide(p);
      expect(denied).toMatchObject({ allowed: false, binding: 0, retryAtMs: boundary, resetMs: boundary });
      const after = fx().storeAt(boundary + 1500);
      const again = await after.decide(p);
      expect(again).toMatchObject({ allowed: true, remaining: 1 });
      expect(again.resetMs).toBe(quotaPeriod(period, anchor, boundary).endMs);
    });

    test('the store\'s quota periods are calendar.ts\'s at every month boundary of 2026-2029 (± 2 s), anchors 1, 29, 30 and 31', async () => {
      const mismatches: string[] = [];
      for (let year = 2026; year <= 2029; year++) {
        for (let month = 1; month <= 12; month++) {
          for (const anchor of [1, 29, 30, 31]) {
            const start = quotaPeriod('month', anchor, Date.UTC(year, month - 1, 15)).startMs;
            for (const at of [start - 2000, start + 2000]) {
              const p = plan(freshId('cal'), [counters.quota('q', 5, 'month', anchor)]);
              const r = await fx().storeAt(at).peek(p);
              const expected = quotaPeriod('month', anchor, r.nowMs).endMs;
              if (r.resetMs !== expected) mismatches.push(`${new Date(r.nowMs).toISOString()} anchor ${anchor}: ${new Date(r.resetMs).toISOString()} ≠ ${new Date(expected).toISOString()}`);
            }
          }
        }
      }
      expect(mismatches).toEqual([]);
    });

    test('a quota keeps its count when its tier changes algorithm', async () => {
      const id = freshId('algo');
      const quota = counters.quota('t-quota', 10, 'day');
      for (let i = 0; i < 3; i++) await fx().raw[0].decide(plan(id, [counters.rate('t', 'sliding-window', 100, MINUTE, 'rate'), quota]));
      const asGcra = plan(id, [counters.rate('t', 'gcra', 100, MINUTE, 'rate'), quota]);
      expect(await fx().raw[0].changeQuota(asGcra, null)).toMatchObject({ used: 3, remaining: 7 });
      expect((await fx().raw[0].decide(asGcra)).counters[2]).toBe(6);
    });

    test('quota top-up and reset: {"add":N} gives N more this period, {"reset":true} starts it afresh', async () => {
      const p = plan(freshId('topup'), [counters.quota('t-quota', 2, 'day')]);
      const store = fx().raw[0];
      expect((await burst(p, 4)).filter((r) => r.allowed)).toHaveLength(2);
      expect(await store.changeQuota(p, { add: 3 })).toMatchObject({ limit: 5, used: 2, remaining: 3 });
      expect((await burst(p, 6)).filter((r) => r.allowed)).toHaveLength(3);
      expect(await store.changeQuota(p, { reset: true })).toMatchObject({ limit: 2, used: 0, remaining: 2 });
      expect((await burst(p, 4)).filter((r) => r.allowed)).toHaveLength(2);
    });
  });
}

/** Multi-counter sequences, with costs, on a Redis store and on MemoryLimitStore driven by Redis's clock: identical answers. */
function describeMultiAgreement(name: string, makeFixture: () => Promise<LimitStoreFixture>): void {
  test.each(ALGORITHMS)(`${name}: multi-counter plans agree with MemoryLimitStore decision for decision (%s)`, async (algorithm) => {
    const redisFx = await makeFixture();
    try {
      await awayFromWindowEdge(redisFx, MINUTE, 3000);
      const id = `agree-multi-${randomUUID()}`;
      const list = [counters.rate('t', algorithm, 20, MINUTE, 'rate'), counters.rate('t-1s', algorithm, 8, 1000), counters.quota('t-quota', 15, 'day'), counters.quota('m', 30, 'month', 31)];
      const plans = [plan(id, list), plan(id, list, 2), plan(id, list.slice(0, 2), 3)];
      const steps: Array<{ p: Plan; peek: boolean } | number> = [];
      for (let round = 0; round < 4; round++) {
        for (let i = 0; i < 7; i++) steps.push({ p: plans[i % plans.length], peek: i === 5 });
        steps.push(300);
      }
      const fromRedis: PlanResult[] = [];
      for (const s of steps) {
        if (typeof s === 'number') await sleep(s);
        else fromRedis.push(s.peek ? await redisFx.raw[0].peek(s.p) : await redisFx.raw[0].decide(s.p));
      }
      let now = 0;
      const memory = new MemoryLimitStore(() => now);
      const fromMemory: PlanResult[] = [];
      const calls = steps.filter((s): s is { p: Plan; peek: boolean } => typeof s !== 'number');
      for (let i = 0; i < calls.length; i++) {
        now = fromRedis[i].nowMs;
        fromMemory.push(calls[i].peek ? await memory.peek(calls[i].p) : await memory.decide(calls[i].p));
      }
      memory.close();
      expect(fromRedis.filter((r) => r.allowed).length).toBeGreaterThan(3);
      expect(fromRedis.filter((r) => !r.allowed).length).toBeGreaterThan(3);
      expect(fromRedis).toEqual(fromMemory);
    } finally {
      await redisFx.close();
    }
  });
}

// --- the backends ---------------------------------------------------------------------

function memoryFixture(): Promise<LimitStoreFixture> {
  // A fake clock 1 s into an epoch-aligned minute (and second).
  let now = 1_700_000_041_000;
  const store = new MemoryLimitStore(() => now);
  let calendarNow = 0;
  const calendar = new MemoryLimitStore(() => calendarNow);
  return Promise.resolve({
    storeAt(instantMs: number) {
      calendarNow = instantMs;
      return calendar;
    },
    stores: [singleCounterStore(store)],
    raw: [store],
    now: () => now,
    wait(ms: number) {
      now += Math.ceil(ms);
      return Promise.resolve();
    },
    close() {
      store.close();
      calendar.close();
      return Promise.resolve();
    },
  });
}

/** Three clients (three gateway instances) sharing one Redis deployment, real time. */
function sharedRedisFixture(clients: ReadonlyArray<Redis | Cluster>, stop: () => Promise<void>): LimitStoreFixture {
  const prefix = `contract-${randomUUID().slice(0, 8)}:`;
  const raw = clients.map((client) => new RedisLimitStore(client, prefix));
  return {
    stores: raw.map(singleCounterStore),
    raw,
    storeAt: (instantMs) => new RedisLimitStore(clients[0], prefix, { clockOffsetMs: instantMs - Date.now() }),
    now: () => Date.now(),
    wait: (ms) => sleep(Math.ceil(ms)),
    async close() {
      for (const client of clients) client.disconnect();
      await stop();
    },
  };
}

async function redisFixture(): Promise<LimitStoreFixture> {
  const server = await startRedis();
  return sharedRedisFixture([0, 1, 2].map(() => new Redis(server.url)), () => server.stop());
}

async function clusterFixture(): Promise<LimitStoreFixture> {
  const cluster = await startRedisCluster();
  const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
  return sharedRedisFixture([0, 1, 2].map(() => new Cluster(nodes)), () => cluster.stop());
}

describeMultiCounterContract('MemoryLimitStore (fake clock)', memoryFixture);
describeMultiCounterContract('RedisLimitStore on redis-server', redisFixture);
describeMultiCounterContract('RedisLimitStore on a 3-master Redis Cluster', clusterFixture);
describeLimitStoreContract('MemoryLimitStore (fake clock)', memoryFixture);
describeLimitStoreContract('RedisLimitStore on redis-server', redisFixture);
describeLimitStoreContract('RedisLimitStore on a 3-master Redis Cluster', clusterFixture);
describeMultiAgreement('RedisLimitStore on redis-server', redisFixture);
describeMultiAgreement('RedisLimitStore on a 3-master Redis Cluster', clusterFixture);
describeAgreementWithMemory('RedisLimitStore on redis-server', redisFixture);
describeAgreementWithMemory('RedisLimitStore on a 3-master Redis Cluster', clusterFixture);
