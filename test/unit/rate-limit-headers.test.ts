import type { HeaderList } from '../../src/errorResponse';
import { rateLimitHeaders } from '../../src/gateway/rateLimitHeaders';
import { makeTemplate, planResult } from '../../src/limit/plan';
import type { LimitResult } from '../../src/limit/store';

/** One main window, as before SPEC §9. */
interface HeaderInput {
  readonly tier: string;
  readonly limit: number;
  readonly windowSeconds: number;
  readonly result: LimitResult;
  readonly draft: boolean;
}

function oneWindowHeaders(h: HeaderInput): HeaderList {
  const template = makeTemplate([{ name: h.tier, kind: 'rate', key: 'sw', spec: 'sw', limit: h.limit, windowMs: h.windowSeconds * 1000, anchor: 0 }]);
  const r = h.result;
  return rateLimitHeaders({ subject: 'k', template, cost: 1 }, planResult(r.allowed, r.retryAtMs, r.nowMs, 0, [r.remaining, r.resetMs]), h.draft);
}

/* SPEC §3: the rate-limit response headers, and the draft-11 RateLimit fields. */

const NOW = 1_700_000_070_000; // a whole second, 30 s before the 60 s window ends
const WINDOW_END = 1_700_000_100_000;

function result(overrides: Partial<LimitResult>): LimitResult {
  return { allowed: true, remaining: 19, resetMs: WINDOW_END, retryAtMs: 0, nowMs: NOW, ...overrides };
}

function input(overrides: Partial<HeaderInput> & { result: LimitResult }): HeaderInput {
  return { tier: 'free', limit: 20, windowSeconds: 60, draft: false, ...overrides };
}

/** Header name → value; fails on a repeated header, which a client could not read unambiguously. */
function asObject(list: HeaderList): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of list) {
    const key = name.toLowerCase();
    if (key in out) throw new Error(`header ${name} set twice`);
    out[key] = value;
  }
  return out;
}

describe('rateLimitHeaders', () => {
  test('allowed: limit, remaining and reset in whole Unix seconds, and no Retry-After', () => {
    expect(asObject(oneWindowHeaders(input({ result: result({}) })))).toEqual({
      'x-ratelimit-limit': '20',
      'x-ratelimit-remaining': '19',
      'x-ratelimit-reset': '1700000100',
    });
  });

  test('denied: remaining 0 and Retry-After in whole seconds rounded up', () => {
    const headers = asObject(oneWindowHeaders(input({
      result: result({ allowed: false, remaining: 0, retryAtMs: NOW + 4_500 }),
    })));
    expect(headers).toEqual({
      'x-ratelimit-limit': '20',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': '1700000100',
      'retry-after': '5',
    });
  });

  test('Retry-After is at least 1 even when the retry time has already come', () => {
    for (const retryAtMs of [NOW, NOW - 3_000, NOW + 1]) {
      const headers = asObject(oneWindowHeaders(input({ result: result({ allowed: false, remaining: 0, retryAtMs }) })));
      expect(headers['retry-after']).toBe('1');
    }
  });

  test('X-RateLimit-Reset rounds a fractional-second reset (GCRA) up', () => {
    const headers = asObject(oneWindowHeaders(input({ result: result({ resetMs: NOW + 2_500 }) })));
    expect(headers['x-ratelimit-reset']).toBe('1700000073');
  });

  test('X-RateLimit-Limit is the effective limit passed in (e.g. DEGRADED free = 2)', () => {
    const headers = asObject(oneWindowHeaders(input({ limit: 2, result: result({ remaining: 1 }) })));
    expect(headers['x-ratelimit-limit']).toBe('2');
  });

  test('remaining is never below 0', () => {
    for (const allowed of [true, false]) {
      const headers = asObject(oneWindowHeaders(input({
        draft: true,
        result: result({ allowed, remaining: -3, retryAtMs: allowed ? 0 : NOW + 1000 }),
      })));
      expect(headers['x-ratelimit-remaining']).toBe('0');
      expect(headers.ratelimit).toMatch(/;r=0;/);
    }
  });

  test('no draft fields unless asked for', () => {
    const names = oneWindowHeaders(input({ result: result({}) })).map(([name]) => name.toLowerCase());
    expect(names).not.toContain('ratelimit');
    expect(names).not.toContain('ratelimit-policy');
  });

  describe('draft fields (RATE_LIMIT_DRAFT_HEADERS=true)', () => {
    test('exact syntax on an allowed response: t is the seconds until X-RateLimit-Reset', () => {
      const headers = asObject(oneWindowHeaders(input({ draft: true, result: result({ remaining: 5 }) })));
      expect(headers['ratelimit-policy']).toBe('"free";q=20;w=60');
      expect(headers.ratelimit).toBe('"free";r=5;t=30');
      expect(Number(headers['x-ratelimit-reset']) - NOW / 1000).toBe(30);
      expect(headers['retry-after']).toBeUndefined();
    });

    test('on a denial r=0 and t equals Retry-After', () => {
      const headers = asObject(oneWindowHeaders(input({
        tier: 'pro',
        limit: 150,
        draft: true,
        result: result({ allowed: false, remaining: 0, retryAtMs: NOW + 12_001 }),
      })));
      expect(headers['retry-after']).toBe('13');
      expect(headers['ratelimit-policy']).toBe('"pro";q=150;w=60');
      expect(headers.ratelimit).toBe('"pro";r=0;t=13');
    });

    test('r always equals X-RateLimit-Remaining', () => {
      for (const remaining of [0, 1, 7, 999]) {
        const headers = asObject(oneWindowHeaders(input({ limit: 1000, draft: true, result: result({ remaining }) })));
        expect(headers.ratelimit).toBe(`"free";r=${headers['x-ratelimit-remaining']};t=30`);
      }
    });

    test('t rounds a fractional reset up and is never negative', () => {
      const soon = asObject(oneWindowHeaders(input({ draft: true, result: result({ resetMs: NOW + 2_500 }) })));
      expect(soon.ratelimit).toBe('"free";r=19;t=3');
      const past = asObject(oneWindowHeaders(input({ draft: true, result: result({ resetMs: NOW - 500 }) })));
      expect(past.ratelimit).toBe('"free";r=19;t=0');
    });

    test('the policy carries the tier name as an sf-string and the window in seconds', () => {
      const headers = asObject(oneWindowHeaders(input({
        tier: 'gold_2-tier', limit: 7, windowSeconds: 3600, draft: true, result: result({ remaining: 6, resetMs: NOW + 3_600_000 }),
      })));
      expect(headers['ratelimit-policy']).toBe('"gold_2-tier";q=7;w=3600');
      expect(headers.ratelimit).toBe('"gold_2-tier";r=6;t=3600');
    });
  });
});
