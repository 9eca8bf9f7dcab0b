import { startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest, type HttpResult } from '../support/http';
import { sleep, waitFor } from '../support/processes';
import { redisCommand } from '../support/resp';
import { startRedis, type RedisServer } from '../support/redis';
import { startUpstream, type Upstream } from '../support/upstream';
import { createKey, get, writeTiers } from './fixtures';

/*
 * The automatic health state and the in-flight guard (SPEC §8) against real gateway
 * processes, a real Redis and an upstream whose latency the test sets per request
 * (/slow?ms=N). Dwell, ramp and sample minimums are shortened so a recovery takes seconds.
 */

const TIERS = {
  windowSeconds: 60,
  tiers: {
    free: { limit: 10_000, burst: 20_000, degraded: 2, critical: 0, priority: 0 },
    pro: { limit: 10_000, burst: 20_000, priority: 1 },
    enterprise: { limit: 10_000, burst: 20_000, priority: 2 },
  },
};
const FAST = {
  HEALTH_MIN_SAMPLES: '5', HEALTH_DWELL_S: '3', HEALTH_RAMP_S: '1', HEALTH_LATENCY_RATIO: '3',
  HEALTH_LATENCY_RATIO_CRITICAL: '1000', HEALTH_LOOP_LAG_MS: '5000', HEALTH_LOOP_LAG_CRITICAL_MS: '10000',
};

interface HealthBody {
  status: string;
  mode: string;
  override: { status: string; until: string | null; reason: string | null; by: string } | null;
  automatic: { status: string; since: string; reasons: string[]; signals: Record<string, number> } | null;
}

async function health(gw: GatewayProcess): Promise<HealthBody> {
  return (await httpRequest(`${gw.adminUrl}/admin/health`)).json<HealthBody>();
}

/** Sends `perSecond` requests a second with `latencyMs` upstream latency until stopped. */
function load(urls: readonly string[], key: string, perSecond: number) {
  let latencyMs = 10;
  let running = true;
  const inFlight = new Set<Promise<unknown>>();
  const loop = (async () => {
    let i = 0;
    while (running) {
      const url = urls[i++ % urls.length];
      const p = get(`${url}/slow?ms=${latencyMs}`, key).catch(() => undefined);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      await sleep(1000 / perSecond);
    }
  })();
  return {
    setLatency(ms: number) { latencyMs = ms; },
    async stop() {
      running = false;
      await loop;
      await Promise.all(inFlight);
    },
  };
}

let upstream: Upstream;
let redis: RedisServer;
let tiersFile: string;

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startUpstream(), startRedis()]);
  tiersFile = writeTiers(TIERS);
});

afterAll(async () => {
  await Promise.all([upstream?.close(), redis?.stop()]);
});

describe('HEALTH_MODE=auto on one gateway', () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, TIERS_FILE: tiersFile, HEALTH_MODE: 'auto', ...FAST } });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  test('a sustained latency fault makes it DEGRADED (free held to its degraded figure); it returns to NORMAL after the fault', async () => {
    const [pro, free] = await Promise.all([createKey(gw.adminUrl, 'pro'), createKey(gw.adminUrl, 'free')]);
    const traffic = load([gw.url], pro.key, 40);
    try {
      await sleep(4000); // a healthy baseline at 10 ms
      expect((await health(gw)).status).toBe('NORMAL');
      traffic.setLatency(80);
      const degraded = await waitFor('DEGRADED', async () => {
        const h = await health(gw);
        return h.status === 'DEGRADED' ? h : undefined;
      }, 20_000, 200);
      expect(degraded.mode).toBe('auto');
      expect(degraded.automatic?.status).toBe('DEGRADED');
      expect(degraded.automatic?.reasons.join(' ')).toMatch(/upstream latency .*× its baseline/);
      expect(degraded.automatic?.signals.latencyRatio).toBeGreaterThanOrEqual(3);
      const r = await get(gw.url, free.key);
      expect(r.headers['x-ratelimit-limit']).toBe('2');

      traffic.setLatency(10);
      await waitFor('NORMAL again', async () => ((await health(gw)).status === 'NORMAL' ? true : undefined), 20_000, 200);
      const metrics = (await httpRequest(`${gw.adminUrl}/metrics`)).body;
      expect(metrics).toMatch(/tollgate_health_transitions_total\{from="NORMAL",to="DEGRADED",cause="auto"\} 1/);
      expect(metrics).toMatch(/tollgate_health_transitions_total\{from="DEGRADED",to="NORMAL",cause="auto"\} 1/);
      expect(gw.output()).toMatch(/"event":"health.changed".*"cause":"auto"/);
    } finally {
      await traffic.stop();
    }
  }, 60_000);

  test('a pinned override holds against the automatic state and expires on time; CRITICAL sheds free with 503 overloaded', async () => {
    const [pro, free] = await Promise.all([createKey(gw.adminUrl, 'pro'), createKey(gw.adminUrl, 'free')]);
    const put = await httpRequest(`${gw.adminUrl}/admin/health`, {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'CRITICAL', ttlSeconds: 3, reason: 'drill' }),
    });
    const pinnedAt = Date.now();
    expect(put.status).toBe(200);
    expect(put.json<HealthBody>()).toMatchObject({ status: 'CRITICAL', override: { status: 'CRITICAL', reason: 'drill', by: '127.0.0.1' } });
    expect((await health(gw)).automatic?.status).toBe('NORMAL');

    const shed = await get(gw.url, free.key);
    expect(shed.status).toBe(503);
    expect(shed.json()).toEqual({ error: 'overloaded', message: expect.any(String), requestId: expect.any(String), retryAfter: expect.any(Number) });
    expect(Number(shed.headers['retry-after'])).toBe(shed.json<{ retryAfter: number }>().retryAfter);
    expect((await get(gw.url, pro.key)).status).toBe(200);

    await sleep(1500);
    expect((await health(gw)).status).toBe('CRITICAL');
    await waitFor('the pin to expire', async () => ((await health(gw)).status === 'NORMAL' ? true : undefined), 10_000, 100);
    const expiredAfter = Date.now() - pinnedAt;
    expect(expiredAfter).toBeGreaterThanOrEqual(2900);
    expect(expiredAfter).toBeLessThan(3000 + 2500);
    expect((await health(gw)).override).toBeNull();
    expect((await get(gw.url, free.key)).status).toBe(200);
    expect((await httpRequest(`${gw.adminUrl}/metrics`)).body).toMatch(/tollgate_health_transitions_total\{from="CRITICAL",to="NORMAL",cause="expiry"\} 1/);
  }, 30_000);

  test('DELETE /admin/health/override ends a pin without TTL; with none in force it is 404', async () => {
    await httpRequest(`${gw.adminUrl}/admin/health`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'DEGRADED' }) });
    expect((await health(gw)).override).toMatchObject({ status: 'DEGRADED', until: null });
    const del = await httpRequest(`${gw.adminUrl}/admin/health/override`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(del.json<HealthBody>()).toMatchObject({ status: 'NORMAL', override: null });
    expect((await httpRequest(`${gw.adminUrl}/admin/health/override`, { method: 'DELETE' })).status).toBe(404);
  });
});

test('HEALTH_MODE=shadow computes the automatic state and never applies it', async () => {
  const gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, TIERS_FILE: tiersFile, HEALTH_MODE: 'shadow', ...FAST } });
  const [pro, free] = await Promise.all([createKey(gw.adminUrl, 'pro'), createKey(gw.adminUrl, 'free')]);
  const traffic = load([gw.url], pro.key, 40);
  try {
    await sleep(4000);
    traffic.setLatency(80);
    const h = await waitFor('automatic DEGRADED', async () => {
      const b = await health(gw);
      return b.automatic?.status === 'DEGRADED' ? b : undefined;
    }, 20_000, 200);
    expect(h.mode).toBe('shadow');
    expect(h.status).toBe('NORMAL');
    expect((await get(gw.url, free.key)).headers['x-ratelimit-limit']).toBe('20000');
    expect((await httpRequest(`${gw.adminUrl}/metrics`)).body).toMatch(/tollgate_health_automatic_state\{state="DEGRADED"\} 1/);
    expect((await httpRequest(`${gw.adminUrl}/metrics`)).body).toMatch(/tollgate_health_state\{state="NORMAL"\} 1/);
  } finally {
    await traffic.stop();
    await gw.stop();
  }
}, 60_000);

test('two instances on one Redis agree on the automatic state within 1 s; the survivor decides within 5 s of the decider’s death', async () => {
  const env = { UPSTREAM_URL: upstream.url, TIERS_FILE: tiersFile, HEALTH_MODE: 'auto', REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'fleet:', STORE_TIMEOUT_MS: '1000', ...FAST };
  const gws = await Promise.all([startGateway({ env }), startGateway({ env })]);
  const leader = async () => String(await redisCommand(redis.port, ['GET', 'fleet:{ctl}:health-leader']));
  try {
    const pro = await createKey(gws[0].adminUrl, 'pro');
    const traffic = load(gws.map((g) => g.url), pro.key, 40);
    try {
      await sleep(4000);
      traffic.setLatency(80);
      const seenAt: number[] = [0, 0];
      await waitFor('both instances DEGRADED', async () => {
        const states = await Promise.all(gws.map(health));
        states.forEach((s, i) => { if (s.status === 'DEGRADED' && seenAt[i] === 0) seenAt[i] = Date.now(); });
        return seenAt.every((t) => t > 0) ? true : undefined;
      }, 25_000, 50);
      expect(Math.abs(seenAt[0] - seenAt[1])).toBeLessThanOrEqual(1000);

      // Kill the decider; the other takes the lease over and keeps the fleet's state.
      const before = await leader();
      const deciderIndex = gws.findIndex((g) => before.includes(`:${g.pid}:`));
      expect(deciderIndex).toBeGreaterThanOrEqual(0);
      const survivor = gws[1 - deciderIndex];
      await gws[deciderIndex].stop('SIGKILL');
      const killedAt = Date.now();
      await waitFor('the survivor to lead', async () => ((await leader()).includes(`:${survivor.pid}:`) ? true : undefined), 10_000, 100);
      expect(Date.now() - killedAt).toBeLessThanOrEqual(5000);
      expect((await health(survivor)).status).toBe('DEGRADED');
    } finally {
      await traffic.stop();
    }
  } finally {
    await Promise.all(gws.map((g) => g.stop()));
  }
}, 90_000);

test('CONCURRENCY_LIMIT: under a saturated upstream the guard refuses free before pro, at once', async () => {
  const gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, TIERS_FILE: tiersFile, CONCURRENCY_LIMIT: '4' } });
  try {
    const [pro, free] = await Promise.all([createKey(gw.adminUrl, 'pro'), createKey(gw.adminUrl, 'free')]);
    const slow = (key: string) => get(`${gw.url}/slow?ms=1500`, key);
    // Free may hold half the 4 slots: the third free request is refused while two wait.
    const freeHeld = [slow(free.key), slow(free.key)];
    await sleep(300);
    const t0 = Date.now();
    const thirdFree = await slow(free.key);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(thirdFree.status).toBe(503);
    expect(thirdFree.json()).toMatchObject({ error: 'overloaded' });
    // Pro takes the other two slots; a fifth request finds none.
    const proHeld = [slow(pro.key), slow(pro.key)];
    await sleep(300);
    const fifth: HttpResult = await slow(pro.key);
    expect(fifth.status).toBe(503);
    const settled = await Promise.all([...freeHeld, ...proHeld]);
    expect(settled.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    // Slots come back when responses end.
    expect((await get(gw.url, free.key)).status).toBe(200);
    const metrics = (await httpRequest(`${gw.adminUrl}/metrics`)).body;
    expect(metrics).toMatch(/tollgate_requests_total\{tier="free",outcome="overloaded"\} 1/);
    expect(metrics).toMatch(/tollgate_requests_total\{tier="pro",outcome="overloaded"\} 1/);
    expect(metrics).toMatch(/tollgate_concurrency_limit 4/);
    expect(metrics).toMatch(/tollgate_upstream_inflight 0/);
  } finally {
    await gw.stop();
  }
}, 30_000);
