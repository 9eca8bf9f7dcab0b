import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { effectiveLimit, type HealthStatus } from '../../src/limit/policy';
import { parseTiers, type Tier, type TierParseResult, type TierSet } from '../../src/limit/tiers';
import { readTiersFile } from '../../src/limit/tiersFile';

/* SPEC §2: tier definitions, their validation, and tier × health → effective limit. */

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const SHIPPED_TIERS_FILE = path.join(REPO_ROOT, 'config', 'tiers.json');

function tiersOf(result: TierParseResult): TierSet {
  if (!result.ok) throw new Error(`expected valid tiers, got reasons: ${result.reasons.join(' | ')}`);
  return result.tiers;
}

function reasonsOf(doc: unknown): string[] {
  const result = parseTiers(doc);
  if (result.ok) throw new Error(`expected ${JSON.stringify(doc)} to be rejected`);
  return result.reasons;
}

function tier(set: TierSet, name: string): Tier {
  const t = set.tiers.get(name);
  if (t === undefined) throw new Error(`no tier ${name}`);
  return t;
}

describe('effectiveLimit with the shipped config/tiers.json', () => {
  let shipped: TierSet;
  beforeAll(async () => {
    shipped = tiersOf(await readTiersFile(SHIPPED_TIERS_FILE));
  });

  test.each([
    ['free', 'NORMAL', 20],
    ['pro', 'NORMAL', 150],
    ['enterprise', 'NORMAL', 1000],
    ['free', 'DEGRADED', 2],
    ['pro', 'DEGRADED', 100],
    ['enterprise', 'DEGRADED', 1000],
    ['free', 'CRITICAL', 0],
    ['pro', 'CRITICAL', 100],
    ['enterprise', 'CRITICAL', 1000],
  ] as Array<[string, HealthStatus, number]>)('%s in %s → %i per window', (name, health, limit) => {
    expect(effectiveLimit(tier(shipped, name), health)).toBe(limit);
  });

  test('the shipped file has exactly the three tiers, a 60 s window and the sliding window', () => {
    expect(shipped.windowSeconds).toBe(60);
    expect(shipped.algorithm).toBe('sliding-window');
    expect([...shipped.tiers.keys()].sort()).toEqual(['enterprise', 'free', 'pro']);
    expect([...shipped.tiers.values()].every((t) => t.algorithm === 'sliding-window')).toBe(true);
  });
});

describe('parseTiers: defaults', () => {
  test('windowSeconds defaults to 60, algorithm to sliding-window, burst and degraded to limit, critical to degraded, priority to 0', () => {
    const set = tiersOf(parseTiers({ tiers: { basic: { limit: 5 } } }));
    expect(set.windowSeconds).toBe(60);
    expect(set.algorithm).toBe('sliding-window');
    expect(tier(set, 'basic')).toEqual({ name: 'basic', limit: 5, burst: 5, degraded: 5, critical: 5, priority: 0, algorithm: 'sliding-window', windows: [], quota: null });
    expect(effectiveLimit(tier(set, 'basic'), 'NORMAL')).toBe(5);
    expect(effectiveLimit(tier(set, 'basic'), 'DEGRADED')).toBe(5);
    expect(effectiveLimit(tier(set, 'basic'), 'CRITICAL')).toBe(5);
    expect(set.lowestPriority).toBe(0);
  });

  test('critical defaults to degraded; the lowest priority is that of the least important tier', () => {
    const set = tiersOf(parseTiers({ tiers: { a: { limit: 10, degraded: 4, priority: 3 }, b: { limit: 10, critical: 0, priority: 1 } } }));
    expect(tier(set, 'a').critical).toBe(4);
    expect(tier(set, 'b').critical).toBe(0);
    expect(set.lowestPriority).toBe(1);
  });

  test('the ramp after a recovery brings NORMAL back from the degraded figure to the burst', () => {
    const shippedFree = tier(tiersOf(parseTiers({ tiers: { free: { limit: 10, burst: 20, degraded: 2 } } })), 'free');
    expect(effectiveLimit(shippedFree, 'NORMAL', 0)).toBe(2);
    expect(effectiveLimit(shippedFree, 'NORMAL', 0.5)).toBe(11);
    expect(effectiveLimit(shippedFree, 'NORMAL', 1)).toBe(20);
    expect(effectiveLimit(shippedFree, 'DEGRADED', 0.5)).toBe(2);
  });

  test('bad critical and priority values are rejected with reasons', () => {
    expect(reasonsOf({ tiers: { a: { limit: 1, critical: -1, priority: 1.5 } } })).toEqual([
      expect.stringMatching(/tier "a": critical must be a whole number of at least 0/),
      expect.stringMatching(/tier "a": priority must be a whole number/),
    ]);
  });

  test('a tier inherits the global algorithm unless it names its own', () => {
    const set = tiersOf(parseTiers({
      windowSeconds: 30,
      algorithm: 'gcra',
      tiers: { a: { limit: 1 }, b: { limit: 2, algorithm: 'sliding-window' } },
    }));
    expect(set).toMatchObject({ windowSeconds: 30, algorithm: 'gcra' });
    expect(tier(set, 'a').algorithm).toBe('gcra');
    expect(tier(set, 'b').algorithm).toBe('sliding-window');
  });

  test('degraded 0 is allowed (the tier is shed entirely in DEGRADED); burst may equal limit', () => {
    const set = tiersOf(parseTiers({ tiers: { free: { limit: 10, burst: 10, degraded: 0 } } }));
    expect(effectiveLimit(tier(set, 'free'), 'NORMAL')).toBe(10);
    expect(effectiveLimit(tier(set, 'free'), 'DEGRADED')).toBe(0);
  });

  test('tier names may be 1-32 of [a-z0-9_-]; more tiers can be added by name', () => {
    const name32 = 'a'.repeat(30) + '_-';
    const set = tiersOf(parseTiers({ tiers: { x: { limit: 1 }, [name32]: { limit: 2 }, 'gold_2-tier': { limit: 3 } } }));
    expect([...set.tiers.keys()]).toEqual(['x', name32, 'gold_2-tier']);
  });
});

describe('parseTiers: every invalid document is rejected with all of its reasons', () => {
  test.each([null, [], 'tiers', 5, true])('not a JSON object (%p)', (doc) => {
    expect(reasonsOf(doc)).toEqual([expect.stringMatching(/JSON object/)]);
  });

  test.each([
    ['no tiers field', {}],
    ['empty tiers', { tiers: {} }],
    ['tiers as an array', { tiers: [] }],
    ['tiers as a string', { tiers: 'free' }],
  ])('%s', (_label, doc) => {
    expect(reasonsOf(doc)).toEqual([expect.stringMatching(/tiers must be an object with at least one tier/)]);
  });

  test('unknown global algorithm', () => {
    expect(reasonsOf({ algorithm: 'leaky-bucket', tiers: { free: { limit: 1, algorithm: 'gcra' } } })).toEqual([
      expect.stringMatching(/^algorithm must be one of sliding-window, gcra; got "leaky-bucket"$/),
    ]);
  });

  test('unknown tier algorithm', () => {
    expect(reasonsOf({ tiers: { free: { limit: 1, algorithm: 'token' } } })).toEqual([
      expect.stringMatching(/tier "free".*algorithm must be one of sliding-window, gcra; got "token"/),
    ]);
  });

  test('burst below limit', () => {
    expect(reasonsOf({ tiers: { free: { limit: 10, burst: 5 } } })).toEqual([
      expect.stringMatching(/tier "free".*burst \(5\) must not be below limit \(10\)/),
    ]);
  });

  test('negative numbers: each one is a reason', () => {
    expect(reasonsOf({ windowSeconds: -1, tiers: { free: { limit: -1, burst: -2, degraded: -3 } } })).toEqual([
      expect.stringMatching(/windowSeconds must be a whole number 1-86400; got -1/),
      expect.stringMatching(/tier "free".*limit must be a whole number of at least 1; got -1/),
      expect.stringMatching(/tier "free".*burst must be a whole number of at least 1; got -2/),
      expect.stringMatching(/tier "free".*degraded must be a whole number of at least 0; got -3/),
    ]);
  });

  test.each([
    [0, '0'],
    [86_401, '86401'],
    [1.5, '1.5'],
    ['60', '"60"'],
  ])('windowSeconds %p', (windowSeconds, shown) => {
    expect(reasonsOf({ windowSeconds, tiers: { free: { limit: 1 } } })).toEqual([
      expect.stringContaining(`windowSeconds must be a whole number 1-86400; got ${shown}`),
    ]);
  });

  test('unknown fields, at the top and in a tier', () => {
    expect(reasonsOf({ window: 60, tiers: { free: { limit: 10, max: 20 } } })).toEqual([
      expect.stringMatching(/unknown field "window".*allowed: windowSeconds, algorithm, tiers/),
      expect.stringMatching(/tier "free".*unknown field "max".*allowed: limit, burst, degraded, critical, priority, algorithm/),
    ]);
  });

  test('bad tier names: upper case and spaces, 33 characters, empty', () => {
    const name33 = 'a'.repeat(33);
    expect(reasonsOf({ tiers: { 'Free Tier': { limit: 1 }, [name33]: { limit: 1 }, '': { limit: 1 } } })).toEqual([
      expect.stringContaining('tier name "Free Tier" must be 1-32 of [a-z0-9_-]'),
      expect.stringContaining(`tier name "${name33}" must be 1-32 of [a-z0-9_-]`),
      expect.stringContaining('tier name "" must be 1-32 of [a-z0-9_-]'),
    ]);
  });

  test('a tier that is not an object', () => {
    expect(reasonsOf({ tiers: { free: 20 } })).toEqual([expect.stringMatching(/tier "free" must be an object/)]);
  });

  test('limits too large to count exactly', () => {
    expect(reasonsOf({ tiers: { huge: { limit: 1e15 } } })).toEqual([expect.stringMatching(/tier "huge".*too large/)]);
  });

  test('several faults in one file: all of them, each once', () => {
    const reasons = reasonsOf({
      windowSeconds: 0,
      algorithm: 'gcra',
      extra: true,
      tiers: {
        free: { limit: 10, burst: 5 },
        pro: { limit: 100, degraded: -1, algorithm: 'fast' },
        'Bad Name': { limit: 1 },
      },
    });
    expect(reasons).toEqual([
      expect.stringMatching(/unknown field "extra"/),
      expect.stringMatching(/windowSeconds .*got 0/),
      expect.stringMatching(/tier "free".*burst \(5\) must not be below limit \(10\)/),
      expect.stringMatching(/tier "pro".*degraded .*got -1/),
      expect.stringMatching(/tier "pro".*algorithm .*got "fast"/),
      expect.stringMatching(/tier name "Bad Name"/),
    ]);
  });

  // A reason must point at what the file actually says. burst and degraded default to
  // limit and a tier's algorithm defaults to the global one; when the value they default
  // from is bad, that is one fault, not three (and not "got undefined" for a field the
  // operator never wrote).
  test.each([
    ['an unknown global algorithm inherited by a tier', { algorithm: 'leaky', tiers: { free: { limit: 1 } } }, /^algorithm must be one of .*got "leaky"$/],
    ['a fractional limit with burst and degraded left to default', { tiers: { free: { limit: 1.5 } } }, /tier "free".*limit .*got 1\.5$/],
    ['a limit given as a string', { tiers: { free: { limit: '10' } } }, /tier "free".*limit .*got "10"$/],
    ['a tier with no limit', { tiers: { free: {} } }, /tier "free".*limit/],
  ])('one fault, one reason: %s', (_label, doc, reason) => {
    expect(reasonsOf(doc)).toEqual([expect.stringMatching(reason)]);
  });
});

describe('readTiersFile', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-tiers-unit-'));

  test('reads and validates a good file', async () => {
    const file = path.join(dir, 'good.json');
    writeFileSync(file, JSON.stringify({ windowSeconds: 10, tiers: { free: { limit: 3, burst: 4 } } }));
    const set = tiersOf(await readTiersFile(file));
    expect(set.windowSeconds).toBe(10);
    expect(tier(set, 'free')).toMatchObject({ limit: 3, burst: 4, degraded: 3 });
  });

  test('bad JSON is one reason naming the file, not a throw', async () => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, '{"tiers": {"free": {"limit": 10,}}}');
    const result = await readTiersFile(file);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reasons).toHaveLength(1);
      expect(result.reasons[0]).toContain(file);
      expect(result.reasons[0]).toMatch(/not valid JSON/);
    }
  });

  test('a missing file is one reason naming the file and ENOENT, not a throw', async () => {
    const file = path.join(dir, 'missing.json');
    const result = await readTiersFile(file);
    expect(result).toEqual({ ok: false, reasons: [expect.stringContaining(file)] });
    if (!result.ok) expect(result.reasons[0]).toContain('ENOENT');
  });

  test('a valid JSON file with invalid tiers gives the parse reasons', async () => {
    const file = path.join(dir, 'invalid.json');
    writeFileSync(file, JSON.stringify({ tiers: { free: { limit: 10, burst: 1 } } }));
    expect(await readTiersFile(file)).toEqual({ ok: false, reasons: [expect.stringMatching(/burst \(1\) must not be below limit \(10\)/)] });
  });
});
