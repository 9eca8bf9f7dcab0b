import {
  gcra,
  retryAfterSeconds,
  slidingWindow,
  type Decision,
  type SlidingWindowState,
} from '../../src/limit/algorithms';

/*
 * The decision arithmetic of both algorithms (SPEC §2, §3 step 4) with injected times.
 * Each helper below is one caller's state: `decide` counts when allowed (as the stores
 * do), `peek` answers what `decide` would without counting.
 */

const MINUTE = 60_000;
// An epoch-aligned window start (1_700_000_040_000 = 28_333_334 × 60_000).
const T0 = 1_700_000_040_000;

interface Caller {
  decide(nowMs: number): Decision;
  peek(nowMs: number): Decision;
}

function slidingWindowCaller(limit: number, windowMs = MINUTE, initial: SlidingWindowState | null = null): Caller {
  let state = initial;
  return {
    decide(nowMs) {
      const { decision, next } = slidingWindow(state, nowMs, limit, windowMs);
      if (next !== null) state = next;
      return decision;
    },
    peek: (nowMs) => slidingWindow(state, nowMs, limit, windowMs).decision,
  };
}

function gcraCaller(limit: number, windowMs = MINUTE): Caller {
  let tat: number | null = null;
  return {
    decide(nowMs) {
      const { decision, nextTat } = gcra(tat, nowMs, limit, windowMs);
      if (nextTat !== null) tat = nextTat;
      return decision;
    },
    peek: (nowMs) => gcra(tat, nowMs, limit, windowMs).decision,
  };
}

function burst(caller: Caller, n: number, nowMs: number): Decision[] {
  return Array.from({ length: n }, () => caller.decide(nowMs));
}

function allowedCount(decisions: readonly Decision[]): number {
  return decisions.filter((d) => d.allowed).length;
}

/** Deterministic spread of start times: many offsets inside a window, many windows. */
function startTimes(count: number, seed = 1): number[] {
  let x = seed;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    out.push(T0 + (x % 50_000_000));
  }
  return out;
}

/** The retry time of a denial is exact: allowed at retryAtMs, still denied 1 ms before. */
function expectRetryAtExact(caller: Caller, denial: Decision, label: string): void {
  expect({ label, allowedAtRetry: caller.peek(denial.retryAtMs).allowed }).toEqual({ label, allowedAtRetry: true });
  expect({ label, allowedJustBefore: caller.peek(denial.retryAtMs - 1).allowed }).toEqual({ label, allowedJustBefore: false });
}

describe('sliding window', () => {
  test('a fresh key with limit 20 is allowed exactly the first 20 of 25 requests at the same instant', () => {
    const decisions = burst(slidingWindowCaller(20), 25, T0 + 12_345);
    expect(decisions.map((d) => d.allowed)).toEqual([...Array<boolean>(20).fill(true), ...Array<boolean>(5).fill(false)]);
  });

  test('remaining counts down 19..0 over the allowed requests and is 0 on every denial', () => {
    const decisions = burst(slidingWindowCaller(20), 25, T0 + 500);
    expect(decisions.map((d) => d.remaining)).toEqual([
      ...Array.from({ length: 20 }, (_, i) => 19 - i),
      0, 0, 0, 0, 0,
    ]);
    expect(decisions.filter((d) => d.allowed).every((d) => d.retryAtMs === 0)).toBe(true);
  });

  test('resetMs is the end of the epoch-aligned window the request falls in', () => {
    for (const offset of [0, 1, 30_000, 59_999]) {
      expect(slidingWindowCaller(20).decide(T0 + offset).resetMs).toBe(T0 + MINUTE);
    }
    expect(slidingWindowCaller(20).decide(T0 + MINUTE).resetMs).toBe(T0 + 2 * MINUTE);
    // Other window lengths align to the epoch too: 1 s windows end on whole seconds.
    expect(slidingWindowCaller(5, 1000).decide(1_700_000_000_250).resetMs).toBe(1_700_000_001_000);
    // Denials report the same window end.
    const caller = slidingWindowCaller(1);
    caller.decide(T0 + 10);
    expect(caller.decide(T0 + 20)).toMatchObject({ allowed: false, resetMs: T0 + MINUTE });
  });

  test('the previous window counts weighted by how much of it still overlaps: 20 used, at 50% 10 more are allowed', () => {
    const caller = slidingWindowCaller(20);
    expect(allowedCount(burst(caller, 20, T0 - MINUTE + 1_000))).toBe(20);
    const decisions = burst(caller, 15, T0 + MINUTE / 2);
    expect(decisions.map((d) => d.allowed)).toEqual([...Array<boolean>(10).fill(true), ...Array<boolean>(5).fill(false)]);
    expect(decisions[0].remaining).toBe(9);
    // At 75% into the window only a quarter of the previous 20 still counts: 5 + 10 = 15 used.
    expect(caller.decide(T0 + (MINUTE * 3) / 4)).toMatchObject({ allowed: true, remaining: 4 });
  });

  test('a count two windows old no longer counts at all', () => {
    const caller = slidingWindowCaller(20);
    burst(caller, 20, T0 - 2 * MINUTE + 5);
    expect(allowedCount(burst(caller, 25, T0))).toBe(20);
  });

  test('retryAtMs inside the same window (the previous window decaying) is exact', () => {
    const caller = slidingWindowCaller(20);
    burst(caller, 20, T0 - MINUTE + 1_000);
    burst(caller, 10, T0 + MINUTE / 2);
    const denial = caller.decide(T0 + MINUTE / 2);
    expect(denial.allowed).toBe(false);
    // 20 × (W − e) + 11 × W ≤ 20 × W from e = 33 s on.
    expect(denial.retryAtMs).toBe(T0 + 33_000);
    expect(denial.retryAtMs).toBeLessThan(denial.resetMs);
    expectRetryAtExact(caller, denial, 'previous-window decay');
  });

  test('retryAtMs in the next window (this window full) is exact', () => {
    const caller = slidingWindowCaller(20);
    burst(caller, 20, T0 + 5_000);
    const denial = caller.decide(T0 + 5_000);
    expect(denial.allowed).toBe(false);
    // Next window: 20 × (W − e) + 1 × W ≤ 20 × W from e = 3 s on.
    expect(denial.retryAtMs).toBe(T0 + MINUTE + 3_000);
    expectRetryAtExact(caller, denial, 'next window');
  });

  test('retryAtMs is exact for every mix of previous and current counts (sweep)', () => {
    for (const limit of [1, 2, 3, 7, 20, 150]) {
      for (const windowMs of [1000, 7_000, MINUTE]) {
        for (const previous of [0, 1, Math.ceil(limit / 3), limit - 1, limit, limit + 4]) {
          for (const at of [0, 1, Math.floor(windowMs / 3), windowMs - 1]) {
            const windowStart = Math.floor(T0 / windowMs) * windowMs;
            const caller = slidingWindowCaller(limit, windowMs, { window: windowStart / windowMs - 1, current: previous, previous: 0 });
            const now = windowStart + at;
            let denial: Decision | undefined;
            for (let i = 0; i <= limit + 1 && denial === undefined; i++) {
              const d = caller.decide(now);
              if (!d.allowed) denial = d;
            }
            if (denial === undefined) throw new Error(`no denial for limit ${limit}`);
            expect(denial.retryAtMs).toBeGreaterThan(now);
            expectRetryAtExact(caller, denial, `limit ${limit} window ${windowMs} previous ${previous} at +${at}`);
          }
        }
      }
    }
  });

  test('limit 0 denies every request, including the first of a fresh key', () => {
    const caller = slidingWindowCaller(0);
    for (const at of [T0, T0 + 1, T0 + 59_999, T0 + MINUTE, T0 + 10 * MINUTE]) {
      const d = caller.decide(at);
      expect(d).toMatchObject({ allowed: false, remaining: 0 });
      expect(d.retryAtMs).toBeGreaterThan(at);
    }
  });
});

describe('GCRA', () => {
  const LIMITS = [1, 2, 3, 7, 20, 150, 1000];

  test.each(LIMITS)('a fresh key with limit %i gets exactly min(N, limit) of a burst at one instant, at many start times', (limit) => {
    const starts = startTimes(limit >= 150 ? 150 : 600, limit);
    for (const start of starts) {
      for (const windowMs of [MINUTE, 1000]) {
        const over = burst(gcraCaller(limit, windowMs), limit + 5, start);
        const allowed = allowedCount(over);
        const under = allowedCount(burst(gcraCaller(limit, windowMs), Math.max(1, limit - 1), start));
        if (allowed !== limit || under !== Math.max(1, limit - 1) || over.slice(0, limit).some((d) => !d.allowed)) {
          throw new Error(`limit ${limit} window ${windowMs} start ${start}: ${allowed} of ${limit + 5} allowed, ${under} of ${limit - 1}`);
        }
      }
    }
  });

  test.each([
    [7, MINUTE],
    [150, MINUTE],
    [1000, MINUTE],
    [5, 1000],
  ])('limit %i per %i ms: a burst that ends before the first token returns is still held to the limit', (limit, windowMs) => {
    const interval = windowMs / limit;
    for (const start of startTimes(100, limit + 17)) {
      const caller = gcraCaller(limit, windowMs);
      // limit + 10 requests spread evenly from `start` to 2 ms before the first token is due
      // (the algorithm may hand a token back up to 1 ms early to absorb rounding; see algorithms.ts).
      const span = Math.ceil(interval) - 2;
      const n = limit + 10;
      let allowed = 0;
      for (let i = 0; i < n; i++) if (caller.decide(start + Math.floor((span * i) / (n - 1))).allowed) allowed++;
      if (allowed !== limit) throw new Error(`start ${start}: ${allowed} allowed, want ${limit}`);
    }
  });

  test.each([
    [5, 1000],
    [7, MINUTE],
    [150, MINUTE],
    [1000, MINUTE],
  ])('limit %i per %i ms: one request comes back every window/limit ms after the bucket is empty', (limit, windowMs) => {
    const interval = windowMs / limit;
    const caller = gcraCaller(limit, windowMs);
    expect(allowedCount(burst(caller, limit, T0))).toBe(limit);
    // Ask every millisecond for 10 intervals: exactly one request per interval gets through,
    // each at its due time k × interval (at most 1 ms early, never late).
    const allowedAt: number[] = [];
    const end = T0 + Math.floor(10 * interval);
    for (let t = T0; t <= end; t++) if (caller.decide(t).allowed) allowedAt.push(t - T0);
    expect(allowedAt).toHaveLength(10);
    allowedAt.forEach((offset, i) => {
      const due = (i + 1) * interval;
      expect(offset).toBeLessThanOrEqual(Math.ceil(due));
      expect(offset).toBeGreaterThanOrEqual(Math.ceil(due) - 1);
    });
  });

  test('retryAtMs is exact: allowed at retryAtMs, denied 1 ms before, for many limits, states and start times', () => {
    for (const limit of LIMITS) {
      for (const windowMs of [MINUTE, 1000, 7_000]) {
        for (const start of startTimes(limit >= 150 ? 20 : 60, limit * 31 + windowMs)) {
          const caller = gcraCaller(limit, windowMs);
          burst(caller, limit, start);
          // Denied right after the burst, and again part-way through the refill.
          for (const later of [0, Math.floor(windowMs / limit / 3)]) {
            const denial = caller.peek(start + later);
            expect(denial.allowed).toBe(false);
            expect(denial.retryAtMs).toBeGreaterThan(start + later);
            expectRetryAtExact(caller, denial, `limit ${limit} window ${windowMs} start ${start} +${later}`);
          }
        }
      }
    }
  });

  test('remaining counts down from limit − 1 and tracks tokens that came back', () => {
    const caller = gcraCaller(5, 1000);
    expect(burst(caller, 6, T0).map((d) => d.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
    // 600 ms later three tokens (one per 200 ms) are back: this request takes one, two remain.
    expect(caller.decide(T0 + 600)).toMatchObject({ allowed: true, remaining: 2 });
    // A long idle refills to capacity and no further.
    expect(caller.decide(T0 + 60_000)).toMatchObject({ allowed: true, remaining: 4 });
  });

  test('resetMs is when the bucket is full again', () => {
    const caller = gcraCaller(20); // one token per 3 s
    const decisions = burst(caller, 3, T0);
    expect(decisions.map((d) => d.resetMs)).toEqual([T0 + 3_000, T0 + 6_000, T0 + 9_000]);
    // At resetMs the bucket is full: the next request leaves limit − 1.
    expect(caller.peek(T0 + 9_000)).toMatchObject({ allowed: true, remaining: 19 });

    const fractional = gcraCaller(7); // 8571.43 ms per token
    fractional.decide(T0);
    expect(fractional.decide(T0).resetMs).toBe(Math.ceil(T0 + (2 * MINUTE) / 7));

    const empty = gcraCaller(5, 1000);
    burst(empty, 5, T0);
    expect(empty.decide(T0 + 10)).toMatchObject({ allowed: false, remaining: 0, resetMs: T0 + 1000 });
  });

  test('limit 0 denies every request', () => {
    const caller = gcraCaller(0);
    for (const at of [T0, T0 + 1, T0 + 10 * MINUTE]) {
      const d = caller.decide(at);
      expect(d).toMatchObject({ allowed: false, remaining: 0 });
      expect(d.retryAtMs).toBeGreaterThan(at);
    }
  });
});

describe('retryAfterSeconds', () => {
  test.each([
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [1999, 2],
    [2000, 2],
    [59_999, 60],
    [0, 1],
    [-5000, 1],
  ])('retry %i ms from now → %i s (rounded up, at least 1)', (inMs, seconds) => {
    expect(retryAfterSeconds(T0 + inMs, T0)).toBe(seconds);
  });

  test('a client that waits exactly Retry-After seconds is allowed (both algorithms)', () => {
    const factories: Array<[string, () => Caller]> = [
      ['sliding-window', () => slidingWindowCaller(20)],
      ['gcra', () => gcraCaller(20)],
      ['gcra fractional', () => gcraCaller(7)],
    ];
    for (const [name, make] of factories) {
      for (const start of startTimes(50, name.length)) {
        const fresh = make();
        let denial: Decision | undefined;
        for (let i = 0; i < 30 && denial === undefined; i++) {
          const d = fresh.decide(start);
          if (!d.allowed) denial = d;
        }
        if (denial === undefined) throw new Error(`${name}: never denied`);
        const waitS = retryAfterSeconds(denial.retryAtMs, start);
        expect({ name, start, allowed: fresh.peek(start + waitS * 1000).allowed }).toEqual({ name, start, allowed: true });
      }
    }
  });
});
