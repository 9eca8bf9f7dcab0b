import { nextLimit, type AdaptiveSettings } from '../../src/health/adaptiveLimit';
import { HealthState, type AutomaticRecord } from '../../src/health/healthState';
import { admits, InflightGuard } from '../../src/health/inflightGuard';
import { shedRetryAfter } from '../../src/health/shed';
import { LatencyBaseline, SignalRecorder } from '../../src/health/signals';

describe('the in-flight guard’s admission rule per priority', () => {
  test('the lowest priority holds at most half the slots; the others share the rest and what it leaves', () => {
    expect(admits(10, 4, 4, true)).toBe(true);
    expect(admits(10, 5, 5, true)).toBe(false); // half of 10 taken by the lowest
    expect(admits(10, 5, 5, false)).toBe(true); // higher priorities still get in
    expect(admits(10, 9, 0, false)).toBe(true); // and may use what the lowest leaves free
    expect(admits(10, 10, 0, false)).toBe(false);
    expect(admits(10, 8, 2, true)).toBe(true);
    expect(admits(10, 10, 2, true)).toBe(false);
    expect(admits(1, 0, 0, true)).toBe(true); // a limit of 1 still admits one
  });

  test('a saturated guard refuses free before pro, and counts what it did', () => {
    const guard = new InflightGuard(() => 4);
    expect([true, true, false].map(() => guard.tryAcquire(true))).toEqual([true, true, false]);
    expect([1, 2, 3].map(() => guard.tryAcquire(false))).toEqual([true, true, false]);
    guard.release(true);
    expect(guard.tryAcquire(false)).toBe(true);
    expect(guard.inFlight).toBe(4);
    expect(guard.take()).toEqual({ rejections: 2, admitted: 5 });
    expect(guard.take()).toEqual({ rejections: 0, admitted: 0 });
    expect(guard.takePeak()).toEqual({ peak: 4, peakHigh: 3, sawLowest: true });
    guard.release(false);
    guard.release(false);
    // A window starts at what is in flight when the last one was read.
    expect(guard.takePeak()).toEqual({ peak: 4, peakHigh: 3, sawLowest: true });
    guard.release(true);
    expect(guard.takePeak()).toEqual({ peak: 2, peakHigh: 1, sawLowest: true });
    expect(guard.takePeak()).toEqual({ peak: 1, peakHigh: 1, sawLowest: false });
  });
});

describe('CONCURRENCY_LIMIT=auto arithmetic', () => {
  const s: AdaptiveSettings = { initial: 100, min: 4, max: 1000, tolerance: 2 };

  test('latency within tolerance: grows by √limit when the slots are used, holds when app-limited', () => {
    expect(nextLimit(100, { latencyMs: 60, baselineMs: 50, peakInflight: 60, samples: 100, highDemand: null, slowWindows: 3 }, s, 20)).toBe(110);
    expect(nextLimit(100, { latencyMs: 60, baselineMs: 50, peakInflight: 20, samples: 100, highDemand: null, slowWindows: 3 }, s, 20)).toBe(100);
    expect(nextLimit(1000, { latencyMs: 50, baselineMs: 50, peakInflight: 900, samples: 100, highDemand: null, slowWindows: 3 }, s, 20)).toBe(1000);
  });

  test('latency over tolerance: the gradient applies to the concurrency actually used, clamped to [0.5, 1]', () => {
    // 125 ms vs 50 ms with tolerance 2 → gradient 0.8, applied to the 30 in flight, + √100.
    expect(nextLimit(100, { latencyMs: 125, baselineMs: 50, peakInflight: 30, samples: 100, highDemand: null, slowWindows: 3 }, s, 20)).toBe(34);
    // Very slow: the gradient bottoms out at 0.5.
    expect(nextLimit(40, { latencyMs: 1000, baselineMs: 50, peakInflight: 40, samples: 100, highDemand: null, slowWindows: 3 }, s, 20)).toBe(26);
    expect(nextLimit(5, { latencyMs: 1000, baselineMs: 50, peakInflight: 5, samples: 100, highDemand: null, slowWindows: 3 }, s, 20)).toBe(5);
    expect(nextLimit(4, { latencyMs: 1000, baselineMs: 50, peakInflight: 1, samples: 100, highDemand: null, slowWindows: 3 }, s, 20)).toBe(4);
  });

  test('while the lowest priority is in play, the limit keeps twice what the higher priorities had in flight', () => {
    // A slower upstream (125 ms vs 50): the gradient alone would take the limit to
    // 8 × 0.8 + √12 ≈ 10, leaving paying requests 5 slots; with 4.8 of them in flight at
    // their peak, the floor is 2 × 4.8 + √12.
    const w = { latencyMs: 125, baselineMs: 50, peakInflight: 8, samples: 100, slowWindows: 3 };
    expect(nextLimit(12, { ...w, highDemand: null }, s, 20)).toBe(10);
    expect(nextLimit(12, { ...w, highDemand: 4.8 }, s, 20)).toBe(13);
    // It never raises the limit past max.
    expect(nextLimit(1000, { ...w, peakInflight: 900, highDemand: 800 }, s, 20)).toBe(1000);
  });

  test('one or two slow quarter seconds shrink nothing, three in a row do; after a fault the limit climbs back to the initial one even when idle', () => {
    const slow = { latencyMs: 200, baselineMs: 50, peakInflight: 40, samples: 100, highDemand: null };
    expect(nextLimit(100, { ...slow, slowWindows: 2 }, s, 20)).toBe(100);
    expect(nextLimit(100, { ...slow, slowWindows: 3 }, s, 20)).toBe(30);
    const idle = { latencyMs: 50, baselineMs: 50, peakInflight: 2, samples: 100, highDemand: null, slowWindows: 0 };
    expect(nextLimit(30, idle, s, 20)).toBe(35);
    expect(nextLimit(98, idle, s, 20)).toBe(100);
    expect(nextLimit(100, idle, s, 20)).toBe(100);
  });

  test('a second without enough samples or without a baseline changes nothing', () => {
    expect(nextLimit(100, { latencyMs: 1000, baselineMs: 50, peakInflight: 90, samples: 5, highDemand: null, slowWindows: 3 }, s, 20)).toBe(100);
    expect(nextLimit(100, { latencyMs: 1000, baselineMs: 0, peakInflight: 90, samples: 100, highDemand: null, slowWindows: 3 }, s, 20)).toBe(100);
  });

  test('the upstream model of the overload experiment: the limit settles near its 10 slots within seconds', () => {
    // 10 slots at 125 ms each; more in flight queue, so latency grows with the limit.
    let limit = 100;
    for (let second = 0; second < 10; second++) {
      const inflight = limit;
      const latencyMs = 125 * Math.max(1, inflight / 10);
      limit = nextLimit(limit, { latencyMs, baselineMs: 50, peakInflight: inflight, samples: 100, highDemand: null, slowWindows: 3 }, s, 20);
    }
    expect(limit).toBeGreaterThanOrEqual(8);
    expect(limit).toBeLessThanOrEqual(16);
  });
});

describe('the latency baseline', () => {
  test('is learned over five busy seconds, then follows a faster upstream, creeps towards a slightly slower one, and ignores a fault', () => {
    const b = new LatencyBaseline(2, 20);
    for (let i = 0; i < 4; i++) b.observe(50, 100);
    expect(b.ms).toBe(0); // still learning: no latency signal yet
    b.observe(50, 100);
    expect(b.ms).toBe(50);
    for (let i = 0; i < 600; i++) b.observe(125, 100); // ten minutes of fault
    expect(b.ms).toBe(50);
    b.observe(40, 100);
    expect(b.ms).toBeCloseTo(48, 5);
    b.observe(60, 100);
    expect(b.ms).toBeGreaterThan(48);
    expect(b.ms).toBeLessThan(49);
    b.observe(10, 5); // too few samples
    expect(b.ms).toBeLessThan(49);
  });

  test('a slow cold start does not become the baseline', () => {
    const b = new LatencyBaseline(2, 20);
    b.observe(600, 100);
    for (let i = 0; i < 4; i++) b.observe(50, 100);
    expect(b.ms).toBeLessThan(100);
  });

  test('the recorder’s median and overload-class failures', () => {
    const r = new SignalRecorder();
    for (let i = 0; i < 60; i++) r.response(0.05, 200);
    for (let i = 0; i < 40; i++) r.response(0.5, i < 10 ? 503 : 500);
    r.failure(true);
    const t = r.take();
    expect(t.requests).toBe(101);
    expect(t.failures).toBe(11); // 503s and the reset; the 500s are not overload
    expect(t.latencyMs).toBeGreaterThanOrEqual(50);
    expect(t.latencyMs).toBeLessThan(58); // the bucket's upper bound, within 15 %
    expect(r.take()).toEqual({ requests: 0, failures: 0, latencyMs: 0 });
  });

  test('the adaptive limit reads quarter seconds, the signals whole seconds, from the same responses', () => {
    const r = new SignalRecorder();
    for (let i = 0; i < 10; i++) r.response(0.05, 200);
    expect(r.takeQuarter()).toEqual({ latencyMs: expect.any(Number), responses: 10 });
    for (let i = 0; i < 30; i++) r.response(0.2, 200);
    const q = r.takeQuarter();
    expect(q.responses).toBe(30);
    expect(q.latencyMs).toBeGreaterThanOrEqual(200);
    const second = r.take();
    expect(second.requests).toBe(40);
    expect(second.latencyMs).toBeGreaterThanOrEqual(200); // 30 of 40 at 200 ms
  });
});

describe('the state in force: overrides with a TTL, expiry back to automatic', () => {
  const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
  const auto = (status: AutomaticRecord['status'], epoch = 1): AutomaticRecord => ({
    status, since: new Date(T0).toISOString(), reasons: ['r'], signals: {}, recovered: false, epoch,
  });

  test('auto mode: automatic state in force; a pin holds against it until its TTL, then expiry restores it', () => {
    const h = new HealthState('auto', new Date(T0));
    const seen: string[] = [];
    h.onChange((to, from, cause) => seen.push(`${from}→${to} ${cause}`));
    h.setAutomatic(auto('DEGRADED'), T0);
    expect(h.status).toBe('DEGRADED');
    h.setOverride({ status: 'NORMAL', since: new Date(T0).toISOString(), until: new Date(T0 + 60_000).toISOString(), reason: 'planned', by: '10.0.0.1' }, T0);
    expect(h.status).toBe('NORMAL');
    h.setAutomatic(auto('CRITICAL'), T0 + 1000);
    expect(h.status).toBe('NORMAL');
    h.tick(T0 + 59_999, 60);
    expect(h.status).toBe('NORMAL');
    h.tick(T0 + 60_000, 60);
    expect(h.status).toBe('CRITICAL');
    expect(h.override).toBeNull();
    expect(seen).toEqual(['NORMAL→DEGRADED auto', 'DEGRADED→NORMAL override', 'NORMAL→CRITICAL expiry']);
  });

  test('manual mode: NORMAL unless pinned; shadow mode never applies the automatic state', () => {
    const manual = new HealthState('manual', new Date(T0));
    manual.setAutomatic(auto('CRITICAL'), T0);
    expect(manual.status).toBe('NORMAL');
    manual.setOverride({ status: 'DEGRADED', since: new Date(T0).toISOString(), until: null, reason: null, by: 'x' }, T0);
    manual.tick(T0 + 86_400_000, 60);
    expect(manual.status).toBe('DEGRADED');
    manual.setOverride(null, T0);
    expect(manual.status).toBe('NORMAL');
    const shadow = new HealthState('shadow', new Date(T0));
    shadow.setAutomatic(auto('CRITICAL'), T0);
    expect(shadow.status).toBe('NORMAL');
    expect(shadow.automatic?.status).toBe('CRITICAL');
  });

  test('a record from an older decider epoch is ignored; the ramp runs after an automatic recovery', () => {
    const h = new HealthState('auto', new Date(T0));
    h.setAutomatic(auto('DEGRADED', 5), T0);
    h.setAutomatic(auto('NORMAL', 4), T0);
    expect(h.status).toBe('DEGRADED');
    h.setAutomatic({ ...auto('NORMAL', 5), recovered: true, since: new Date(T0 + 10_000).toISOString() }, T0 + 10_000);
    h.tick(T0 + 40_000, 60);
    expect(h.ramp).toBeCloseTo(0.5, 5);
    h.tick(T0 + 80_000, 60);
    expect(h.ramp).toBe(1);
  });
});

test('shed clients are told to come back at spread-out times', () => {
  expect(shedRetryAfter(0)).toBe(5);
  expect(shedRetryAfter(0.5)).toBe(10);
  expect(shedRetryAfter(0.999)).toBe(15);
  expect(new Set(Array.from({ length: 200 }, () => shedRetryAfter(Math.random()))).size).toBeGreaterThan(5);
});
