import { civilFromDays, daysFromCivil, quotaPeriod } from '../../src/limit/calendar';
import { gcra, quota, slidingWindow } from '../../src/limit/algorithms';
import { rateLimitHeaders } from '../../src/gateway/rateLimitHeaders';
import { applyKeyLimits, anchorDay } from '../../src/limit/limiter';
import { compileTemplate, planResult } from '../../src/limit/plan';
import { parseKeyLimits } from '../../src/limit/planLimits';
import { parseTiers, type Tier } from '../../src/limit/tiers';

/* SPEC §9, the pure parts: calendar periods, cost in the algorithms, plan compilation, headers, validation. */

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number): string => new Date(ms).toISOString();

describe('calendar', () => {
  test('civil dates round-trip for every day of 1970-2100', () => {
    for (let d = 0; d < daysFromCivil(2100, 12, 31); d += 1) {
      const { year, month, day } = civilFromDays(d);
      if (daysFromCivil(year, month, day) !== d) throw new Error(`day ${d}`);
    }
    expect(civilFromDays(daysFromCivil(2028, 2, 29))).toEqual({ year: 2028, month: 2, day: 29 });
  });

  test.each([
    // [period, anchor, now, expected start, expected end]
    ['day', 0, '2027-03-14T23:59:59.999Z', '2027-03-14T00:00:00.000Z', '2027-03-15T00:00:00.000Z'],
    ['day', 0, '2027-03-15T00:00:00.000Z', '2027-03-15T00:00:00.000Z', '2027-03-16T00:00:00.000Z'],
    ['month', 1, '2027-01-31T23:59:59.999Z', '2027-01-01T00:00:00.000Z', '2027-02-01T00:00:00.000Z'],
    ['month', 1, '2027-02-28T12:00:00.000Z', '2027-02-01T00:00:00.000Z', '2027-03-01T00:00:00.000Z'],
    ['month', 1, '2028-02-29T12:00:00.000Z', '2028-02-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z'],
    ['month', 1, '2027-12-31T23:59:59.999Z', '2027-12-01T00:00:00.000Z', '2028-01-01T00:00:00.000Z'],
    ['month', 31, '2027-02-27T23:59:59.999Z', '2027-01-31T00:00:00.000Z', '2027-02-28T00:00:00.000Z'],
    ['month', 31, '2027-02-28T00:00:00.000Z', '2027-02-28T00:00:00.000Z', '2027-03-31T00:00:00.000Z'],
    ['month', 31, '2027-04-30T00:00:00.000Z', '2027-04-30T00:00:00.000Z', '2027-05-31T00:00:00.000Z'],
    ['month', 30, '2028-02-29T00:00:00.000Z', '2028-02-29T00:00:00.000Z', '2028-03-30T00:00:00.000Z'],
    ['month', 29, '2027-02-28T06:00:00.000Z', '2027-02-28T00:00:00.000Z', '2027-03-29T00:00:00.000Z'],
    ['month', 15, '2027-01-14T23:59:59.999Z', '2026-12-15T00:00:00.000Z', '2027-01-15T00:00:00.000Z'],
  ] as const)('%s anchor %i at %s: %s to %s', (period, anchor, now, start, end) => {
    const p = quotaPeriod(period, anchor, at(now));
    expect([iso(p.startMs), iso(p.endMs)]).toEqual([start, end]);
  });

  test('anchorDay is the UTC day of the month of createdAt', () => {
    expect(anchorDay('2026-01-31T23:30:00.000Z')).toBe(31);
    expect(anchorDay('2026-02-01T00:30:00+01:00')).toBe(31);
  });
});

describe('cost in the algorithms', () => {
  test('sliding window: cost 3 needs 3 free and counts 3; refused, its retry needs room for 3', () => {
    const now = 60_000 * 1000 + 10_000;
    const a = slidingWindow(null, now, 10, 60_000, 3);
    expect(a.decision).toMatchObject({ allowed: true, remaining: 7 });
    expect(a.next).toMatchObject({ current: 3 });
    const full = slidingWindow({ window: 1000, current: 9, previous: 0 }, now, 10, 60_000, 3);
    expect(full.decision.allowed).toBe(false);
    expect(full.free).toBe(1);
    // Next window: 9 × (W − e)/W + 3 ≤ 10 → e ≥ W × 2/9.
    expect(full.decision.retryAtMs).toBe(1001 * 60_000 + (60_000 - Math.floor((7 * 60_000) / 9)));
    // Never allowed at this limit: look again next window.
    expect(slidingWindow(null, now, 2, 60_000, 3).decision).toMatchObject({ allowed: false, retryAtMs: 1001 * 60_000 });
  });

  test('gcra: cost N takes N tokens', () => {
    const r = gcra(null, 0, 10, 1000, 4);
    expect(r.decision).toMatchObject({ allowed: true, remaining: 6 });
    expect(r.nextTat).toBe(400);
    expect(gcra(null, 0, 3, 1000, 4).decision.allowed).toBe(false);
  });

  test('quota: used + cost ≤ limit + top-up; another period counts as empty', () => {
    const now = at('2027-03-14T12:00:00Z');
    const today = quotaPeriod('day', 0, now).id;
    expect(quota({ period: today, used: 8, added: 0 }, now, 10, 'day', 0, 2).decision).toMatchObject({ allowed: true, remaining: 0 });
    expect(quota({ period: today, used: 9, added: 0 }, now, 10, 'day', 0, 2).decision).toMatchObject({ allowed: false, retryAtMs: at('2027-03-15T00:00:00Z') });
    expect(quota({ period: today, used: 9, added: 5 }, now, 10, 'day', 0, 2).decision).toMatchObject({ allowed: true, remaining: 4 });
    expect(quota({ period: today - 1, used: 10, added: 0 }, now, 10, 'day', 0, 1).decision).toMatchObject({ allowed: true, remaining: 9 });
  });
});

describe('plans', () => {
  const tier = (def: Record<string, unknown>): Tier => {
    const r = parseTiers({ tiers: { pro: def } });
    if (!r.ok) throw new Error(r.reasons.join('; '));
    return r.tiers.tiers.get('pro') as Tier;
  };

  test('counters in order, named for the draft headers, keyed under the subject by window length and period', () => {
    const t = tier({ limit: 100, burst: 150, windows: [{ limit: 20, windowSeconds: 1 }, { limit: 5000, windowSeconds: 3600 }], quota: { limit: 1000000, period: 'month', anchor: 'key' } });
    const template = compileTemplate({ tierName: 'pro', algorithm: 'gcra', mainLimit: 150, windowSeconds: 60, windows: t.windows, quota: t.quota, keyDay: 31 });
    expect(template.counters.map((c) => [c.name, c.kind, c.key, c.limit, c.windowMs, c.anchor])).toEqual([
      ['pro', 'rate', 'gcra', 150, 60_000, 0],
      ['pro-1s', 'window', 'gcra:1s', 20, 1000, 0],
      ['pro-3600s', 'window', 'gcra:3600s', 5000, 3_600_000, 0],
      ['pro-quota', 'quota', 'q:month', 1_000_000, 0, 31],
    ]);
    expect(template.quotaIndex).toBe(3);
  });

  test('per-key limits replace the tier\'s; burst never below limit', () => {
    const t = tier({ limit: 100, burst: 150, windows: [{ limit: 20, windowSeconds: 1 }], quota: { limit: 50, period: 'day' } });
    expect(applyKeyLimits(t, { burst: 7 })).toMatchObject({ limit: 7, burst: 7 });
    expect(applyKeyLimits(t, { limit: 500 })).toMatchObject({ limit: 500, burst: 500 });
    expect(applyKeyLimits(t, { windows: [], quota: null })).toMatchObject({ limit: 100, burst: 150, windows: [], quota: null });
    expect(applyKeyLimits(t, undefined)).toBe(t);
  });

  test('draft headers list every counter; RateLimit is the binding one; X-Quota-* from the quota', () => {
    const t = tier({ limit: 100, windows: [{ limit: 20, windowSeconds: 1 }], quota: { limit: 1000, period: 'day' } });
    const template = compileTemplate({ tierName: 'pro', algorithm: 'sliding-window', mainLimit: 100, windowSeconds: 60, windows: t.windows, quota: t.quota, keyDay: 1 });
    const now = at('2027-03-14T12:00:00Z');
    const plan = { subject: 'k', template, cost: 1 };
    const headers = Object.fromEntries(rateLimitHeaders(plan, planResult(true, 0, now, 1, [99, now + 60_000, 19, now + 1000, 999, at('2027-03-15T00:00:00Z')]), true));
    expect(headers).toEqual({
      'X-RateLimit-Limit': '100', 'X-RateLimit-Remaining': '99', 'X-RateLimit-Reset': String((now + 60_000) / 1000),
      'X-Quota-Limit': '1000', 'X-Quota-Remaining': '999', 'X-Quota-Reset': String(at('2027-03-15T00:00:00Z') / 1000),
      'RateLimit-Policy': '"pro";q=100;w=60, "pro-1s";q=20;w=1, "pro-quota";q=1000;w=86400',
      RateLimit: '"pro-1s";r=19;t=1',
    });
    const refused = Object.fromEntries(rateLimitHeaders(plan, planResult(false, at('2027-03-15T00:00:00Z'), now, 2, [40, now + 60_000, 12, now + 1000, 0, at('2027-03-15T00:00:00Z')]), true));
    expect(refused['Retry-After']).toBe('43200');
    expect(refused.RateLimit).toBe('"pro-quota";r=0;t=43200');
    expect(refused['X-RateLimit-Remaining']).toBe('40');
  });

  test('tiers.json windows and quota: every reason listed', () => {
    const r = parseTiers({ tiers: { a: { limit: 1, windows: [{ limit: 0, windowSeconds: 86401, extra: 1 }], quota: { limit: 1, period: 'week', anchor: 'day' } }, b: { limit: 1, windows: 'x', quota: 5 } } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reasons).toEqual([
      'tier "a": windows[0]: unknown field "extra" (allowed: limit, windowSeconds)',
      'tier "a": windows[0].limit must be a whole number of at least 1; got 0',
      'tier "a": windows[0].windowSeconds must be a whole number 1-86400; got 86401',
      'tier "a": quota.period must be "day" or "month"; got "week"',
      'tier "a": quota.anchor must be "key" (or left out for the calendar); got "day"',
      'tier "b": windows must be an array of {"limit","windowSeconds"}; got "x"',
      'tier "b": quota must be an object {"limit","period"[,"anchor":"key"]} or null; got 5',
    ]);
  });

  test('key limits: validated like tiers.json', () => {
    expect(parseKeyLimits({ limit: 5, burst: 10, critical: 0, windows: [{ limit: 2, windowSeconds: 1 }], quota: null })).toEqual({
      ok: true, limits: { limit: 5, burst: 10, critical: 0, windows: [{ limit: 2, windowSeconds: 1 }], quota: null },
    });
    const bad = parseKeyLimits({ limit: 'x', degraded: -1, windows: [{ limit: 1, windowSeconds: 1 }, { limit: 1, windowSeconds: 1 }], quota: { limit: 0, period: 'day' }, foo: 1 });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.reasons).toHaveLength(5);
  });
});
