import { parseHealthBody, parseKeyPatch, parseNewKey, parsePage } from '../../src/admin/validate';
import { API_KEY_FORMAT, extractApiKey, generateApiKey, generateKeyId, hashApiKey } from '../../src/auth/apiKey';
import { BlockedIps, MemoryBlockStore } from '../../src/auth/ipBlocks';
import { KeyCache } from '../../src/auth/keyCache';
import type { StoredKey } from '../../src/auth/keyStore';
import { DenyCache } from '../../src/limit/denyCache';
import { planResult, type PlanResult } from '../../src/limit/plan';
import type { Algorithm } from '../../src/limit/tiers';
import { singlePlan } from '../support/limitPlans';

/* The in-process caches (fake clock), the admin body validators and API key handling. */

const T0 = 1_700_000_000_000;

function fakeClock(start = T0): { now: () => number; set(ms: number): void; advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    set(ms) {
      now = ms;
    },
    advance(ms) {
      now += ms;
    },
  };
}

function denial(overrides: { resetMs?: number; retryAtMs?: number; nowMs?: number } = {}): PlanResult {
  const d = { resetMs: T0 + 60_000, retryAtMs: T0 + 5_000, nowMs: T0, ...overrides };
  return planResult(false, d.retryAtMs, d.nowMs, 0, [0, d.resetMs]);
}

/** The one-window template of this limit and algorithm (shared, as the limiter shares them). */
function tpl(limit: number, algorithm: Algorithm) {
  return singlePlan({ id: 'x', algorithm, limit, windowMs: 60_000 }).template;
}

function storedKey(n: number, overrides: Partial<StoredKey> = {}): StoredKey {
  return {
    id: `k_${n}`,
    tier: 'free',
    name: `key ${n}`,
    disabled: false,
    createdAt: new Date(T0).toISOString(),
    hash: hashApiKey(`test_key_${n}_xxxxxxxx`),
    ...overrides,
  };
}

describe('DenyCache', () => {
  test('holds a denial until the retry time, then lets the caller through to the store', () => {
    const clock = fakeClock();
    const cache = new DenyCache(clock.now);
    cache.put('k1', tpl(20, 'sliding-window'), 1, denial(), T0);

    clock.set(T0 + 4_999);
    expect(cache.get('k1', tpl(20, 'sliding-window'), 1)).toMatchObject({
      allowed: false, remaining: 0, resetMs: T0 + 60_000, retryAtMs: T0 + 5_000, nowMs: T0 + 4_999,
    });
    clock.set(T0 + 5_000);
    expect(cache.get('k1', tpl(20, 'sliding-window'), 1)).toBeNull();
    // Released for good: an earlier clock reading does not bring it back.
    clock.set(T0 + 1_000);
    expect(cache.get('k1', tpl(20, 'sliding-window'), 1)).toBeNull();
  });

  test('an unknown caller is a miss; callers are independent', () => {
    const cache = new DenyCache(fakeClock().now);
    expect(cache.get('k1', tpl(20, 'gcra'), 1)).toBeNull();
    cache.put('k1', tpl(20, 'gcra'), 1, denial(), T0);
    expect(cache.get('k2', tpl(20, 'gcra'), 1)).toBeNull();
    expect(cache.get('k1', tpl(20, 'gcra'), 1)).not.toBeNull();
  });

  test('clear() drops every held denial (tiers, keys or health changed)', () => {
    const cache = new DenyCache(fakeClock().now);
    cache.put('k1', tpl(20, 'gcra'), 1, denial(), T0);
    cache.put('k2', tpl(150, 'sliding-window'), 1, denial(), T0);
    cache.clear();
    expect(cache.get('k1', tpl(20, 'gcra'), 1)).toBeNull();
    expect(cache.get('k2', tpl(150, 'sliding-window'), 1)).toBeNull();
  });

  test('a different limit (NORMAL → DEGRADED) or algorithm is a miss', () => {
    const cache = new DenyCache(fakeClock().now);
    cache.put('k1', tpl(20, 'sliding-window'), 1, denial(), T0);
    expect(cache.get('k1', tpl(2, 'sliding-window'), 1)).toBeNull();
    cache.put('k1', tpl(20, 'sliding-window'), 1, denial(), T0);
    expect(cache.get('k1', tpl(20, 'gcra'), 1)).toBeNull();
  });

  test('store times are mapped to local time through the moment the store was asked, so the hold errs early', () => {
    const clock = fakeClock();
    const cache = new DenyCache(clock.now);
    // The store's clock runs 10 s ahead of ours; we asked at T0, the answer arrived 40 ms later.
    const storeNow = T0 + 10_000;
    clock.set(T0 + 40);
    cache.put('k1', tpl(20, 'gcra'), 1, denial({ nowMs: storeNow, retryAtMs: storeNow + 3_000, resetMs: storeNow + 30_000 }), T0);

    const held = cache.get('k1', tpl(20, 'gcra'), 1);
    expect(held).toMatchObject({ allowed: false, retryAtMs: T0 + 3_000, resetMs: T0 + 30_000 });
    clock.set(T0 + 2_999);
    expect(cache.get('k1', tpl(20, 'gcra'), 1)).not.toBeNull();
    // Released 3 s after we asked — not 3 s after the answer arrived (T0 + 3040), which could be late.
    clock.set(T0 + 3_000);
    expect(cache.get('k1', tpl(20, 'gcra'), 1)).toBeNull();
  });

  test('when full, expired entries make room; with none expired, new denials are not held (never wrong, only slower)', () => {
    const clock = fakeClock();
    const cache = new DenyCache(clock.now, 2);
    cache.put('a', tpl(1, 'gcra'), 1, denial({ retryAtMs: T0 + 100 }), T0);
    cache.put('b', tpl(1, 'gcra'), 1, denial({ retryAtMs: T0 + 10_000 }), T0);
    cache.put('c', tpl(1, 'gcra'), 1, denial({ retryAtMs: T0 + 10_000 }), T0);
    expect(cache.get('c', tpl(1, 'gcra'), 1)).toBeNull();
    clock.set(T0 + 200);
    cache.put('c', tpl(1, 'gcra'), 1, denial({ retryAtMs: T0 + 10_000 }), T0);
    expect(cache.get('c', tpl(1, 'gcra'), 1)).not.toBeNull();
    expect(cache.get('b', tpl(1, 'gcra'), 1)).not.toBeNull();
  });
});

describe('KeyCache', () => {
  const options = { ttlMs: 1_000, negativeTtlMs: 100, maxEntries: 3 };

  test('fresh within the TTL, then only stale (kept for store outages)', () => {
    const clock = fakeClock();
    const cache = new KeyCache(clock.now, options);
    const key = storedKey(1);
    cache.put(key.hash, key);
    clock.set(T0 + 1_000);
    expect(cache.fresh(key.hash)).toEqual(key);
    clock.set(T0 + 1_001);
    expect(cache.fresh(key.hash)).toBeUndefined();
    clock.set(T0 + 3_600_000);
    expect(cache.stale(key.hash)).toEqual(key);
  });

  test('a known-bad key is a negative entry (null) with its own, shorter TTL', () => {
    const clock = fakeClock();
    const cache = new KeyCache(clock.now, options);
    cache.put('bad-hash', null);
    expect(cache.fresh('bad-hash')).toBeNull();
    clock.set(T0 + 101);
    expect(cache.fresh('bad-hash')).toBeUndefined();
    expect(cache.stale('bad-hash')).toBeNull();
  });

  test('an unknown hash is undefined, fresh and stale', () => {
    const cache = new KeyCache(fakeClock().now, options);
    expect(cache.fresh('nope')).toBeUndefined();
    expect(cache.stale('nope')).toBeUndefined();
  });

  test('invalidate drops the named hashes only; clear drops all', () => {
    const cache = new KeyCache(fakeClock().now, options);
    const [a, b, c] = [storedKey(1), storedKey(2), storedKey(3)];
    for (const k of [a, b, c]) cache.put(k.hash, k);
    cache.invalidate([a.hash, c.hash, 'not-there']);
    expect(cache.fresh(a.hash)).toBeUndefined();
    expect(cache.stale(a.hash)).toBeUndefined();
    expect(cache.fresh(b.hash)).toEqual(b);
    expect(cache.fresh(c.hash)).toBeUndefined();
    cache.clear();
    expect(cache.size).toBe(0);
  });

  test('at maxEntries the oldest insertion is evicted; re-putting a key refreshes its place', () => {
    const cache = new KeyCache(fakeClock().now, options);
    const [a, b, c, d, e] = [1, 2, 3, 4, 5].map((n) => storedKey(n));
    for (const k of [a, b, c]) cache.put(k.hash, k);
    cache.put(d.hash, d);
    expect(cache.size).toBe(3);
    expect(cache.stale(a.hash)).toBeUndefined();
    expect([b, c, d].map((k) => cache.fresh(k.hash))).toEqual([b, c, d]);

    cache.put(b.hash, b); // b is now the newest
    cache.put(e.hash, e); // evicts c, the oldest
    expect(cache.size).toBe(3);
    expect(cache.stale(c.hash)).toBeUndefined();
    expect([b, d, e].map((k) => cache.fresh(k.hash))).toEqual([b, d, e]);
  });

  test('re-putting an existing hash at maxEntries evicts nothing and replaces the entry', () => {
    const clock = fakeClock();
    const cache = new KeyCache(clock.now, options);
    const [a, b, c] = [storedKey(1), storedKey(2), storedKey(3)];
    for (const k of [a, b, c]) cache.put(k.hash, k);
    const disabled = { ...a, disabled: true };
    clock.advance(900);
    cache.put(a.hash, disabled);
    expect(cache.size).toBe(3);
    expect(cache.fresh(b.hash)).toEqual(b);
    clock.advance(500); // b and c are stale now, a's new entry is not
    expect(cache.fresh(a.hash)).toEqual(disabled);
    expect(cache.fresh(b.hash)).toBeUndefined();
  });
});

describe('BlockedIps', () => {
  test('a block holds until its end, then is gone', () => {
    const clock = fakeClock();
    const blocked = new BlockedIps(clock.now);
    expect(blocked.remainingMs('203.0.113.9')).toBe(0);
    blocked.add({ ip: '203.0.113.9', until: T0 + 300_000 });
    expect(blocked.remainingMs('203.0.113.9')).toBe(300_000);
    expect(blocked.remainingMs('203.0.113.10')).toBe(0);
    clock.set(T0 + 299_999);
    expect(blocked.remainingMs('203.0.113.9')).toBe(1);
    clock.set(T0 + 300_000);
    expect(blocked.remainingMs('203.0.113.9')).toBe(0);
    expect(blocked.active()).toEqual([]);
  });

  test('active() lists only blocks in force; remove and replaceAll', () => {
    const clock = fakeClock();
    const blocked = new BlockedIps(clock.now);
    blocked.add({ ip: 'a', until: T0 + 10 });
    blocked.add({ ip: 'b', until: T0 + 1_000 });
    blocked.add({ ip: 'c', until: T0 + 2_000 });
    clock.set(T0 + 10);
    expect(blocked.active()).toEqual([{ ip: 'b', until: T0 + 1_000 }, { ip: 'c', until: T0 + 2_000 }]);
    blocked.remove('b');
    expect(blocked.remainingMs('b')).toBe(0);
    blocked.replaceAll([{ ip: 'd', until: T0 + 500 }]);
    expect(blocked.remainingMs('c')).toBe(0);
    expect(blocked.active()).toEqual([{ ip: 'd', until: T0 + 500 }]);
  });
});

describe('MemoryBlockStore', () => {
  const policy = { invalidKeyLimit: 3, windowMs: 60_000, blockMs: 300_000 };

  test('the INVALID_KEY_LIMIT-th bad key inside the window blocks the IP for IP_BLOCK_S', async () => {
    const clock = fakeClock();
    const store = new MemoryBlockStore(clock.now);
    expect(await store.recordInvalid('1.1.1.1', policy)).toBeNull();
    expect(await store.recordInvalid('1.1.1.1', policy)).toBeNull();
    expect(await store.recordInvalid('2.2.2.2', policy)).toBeNull();
    clock.advance(5);
    expect(await store.recordInvalid('1.1.1.1', policy)).toEqual({ ip: '1.1.1.1', until: T0 + 5 + 300_000 });
    expect(await store.list()).toEqual([{ ip: '1.1.1.1', until: T0 + 300_005 }]);
    expect(await store.unblock('1.1.1.1')).toBe(true);
    expect(await store.unblock('1.1.1.1')).toBe(false);
    expect(await store.list()).toEqual([]);
  });

  test('bad keys spread wider than the window do not add up', async () => {
    const clock = fakeClock();
    const store = new MemoryBlockStore(clock.now);
    await store.recordInvalid('1.1.1.1', policy);
    await store.recordInvalid('1.1.1.1', policy);
    clock.advance(60_000);
    expect(await store.recordInvalid('1.1.1.1', policy)).toBeNull();
  });
});

describe('admin body validators: every bad body is invalid_request', () => {
  function rejection(fn: () => unknown): { code: unknown; status: unknown; message: string } {
    try {
      fn();
    } catch (err) {
      const e = err as { code?: unknown; status?: unknown; message?: unknown };
      return { code: e.code, status: e.status, message: String(e.message) };
    }
    throw new Error('expected a rejection');
  }

  const notObjects: unknown[] = [null, undefined, 'DEGRADED', 42, true, [], [{ status: 'DEGRADED' }]];

  test('health: {"status":"NORMAL"|"DEGRADED"|"CRITICAL"} with optional ttlSeconds (1-86400) and reason', () => {
    expect(parseHealthBody({ status: 'DEGRADED' })).toEqual({ status: 'DEGRADED', ttlSeconds: null, reason: null });
    expect(parseHealthBody({ status: 'NORMAL' })).toEqual({ status: 'NORMAL', ttlSeconds: null, reason: null });
    expect(parseHealthBody({ status: 'CRITICAL', ttlSeconds: 600, reason: 'upstream incident' }))
      .toEqual({ status: 'CRITICAL', ttlSeconds: 600, reason: 'upstream incident' });
    const bad: unknown[] = [
      ...notObjects,
      {},
      { status: 'degraded' },
      { status: 'DOWN' },
      { status: 1 },
      { status: null },
      { status: 'DEGRADED', ttlSeconds: 0 },
      { status: 'DEGRADED', ttlSeconds: 86_401 },
      { status: 'DEGRADED', ttlSeconds: 1.5 },
      { status: 'DEGRADED', ttlSeconds: '60' },
      { status: 'DEGRADED', reason: 7 },
      { status: 'DEGRADED', until: 'tomorrow' },
    ];
    for (const body of bad) {
      expect({ body, ...rejection(() => parseHealthBody(body)) }).toMatchObject({ body, code: 'invalid_request', status: 400 });
    }
  });

  test('new key: tier required, name optional (1-200 chars), key optional string, nothing else', () => {
    expect(parseNewKey({ tier: 'pro', name: 'acme' })).toEqual({ tier: 'pro', name: 'acme' });
    expect(parseNewKey({ tier: 'pro' })).toEqual({ tier: 'pro', name: 'unnamed' });
    expect(parseNewKey({ tier: 'free', name: 'n'.repeat(200), key: 'imported_key_1' })).toEqual({
      tier: 'free', name: 'n'.repeat(200), key: 'imported_key_1',
    });
    const bad: unknown[] = [
      ...notObjects,
      {},
      { name: 'acme' },
      { tier: '' },
      { tier: 5 },
      { tier: null },
      { tier: 'pro', name: '' },
      { tier: 'pro', name: 'n'.repeat(201) },
      { tier: 'pro', name: 7 },
      { tier: 'pro', name: null },
      { tier: 'pro', key: 12345678 },
      { tier: 'pro', key: null },
      { tier: 'pro', disabled: true },
      { tier: 'pro', id: 'k_1' },
    ];
    for (const body of bad) {
      expect({ body, ...rejection(() => parseNewKey(body)) }).toMatchObject({ body, code: 'invalid_request', status: 400 });
    }
  });

  test('key patch: at least one of tier, name, disabled, each well-typed', () => {
    expect(parseKeyPatch({ disabled: true })).toEqual({ disabled: true });
    expect(parseKeyPatch({ tier: 'pro', name: 'x', disabled: false })).toEqual({ tier: 'pro', name: 'x', disabled: false });
    const bad: unknown[] = [
      ...notObjects,
      {},
      { disabled: 'true' },
      { disabled: 1 },
      { disabled: null },
      { tier: '' },
      { tier: 3 },
      { name: '' },
      { name: 'n'.repeat(201) },
      { hash: 'abc' },
      { key: 'new_key_123' },
      { id: 'k_2', name: 'x' },
    ];
    for (const body of bad) {
      expect({ body, ...rejection(() => parseKeyPatch(body)) }).toMatchObject({ body, code: 'invalid_request', status: 400 });
    }
  });

  test('paging: limit 1-1000 (default 100), cursor optional', () => {
    expect(parsePage(new URLSearchParams(''))).toEqual({ limit: 100, cursor: null });
    expect(parsePage(new URLSearchParams('limit=&cursor='))).toEqual({ limit: 100, cursor: null });
    expect(parsePage(new URLSearchParams('limit=1&cursor=k_abc'))).toEqual({ limit: 1, cursor: 'k_abc' });
    expect(parsePage(new URLSearchParams('limit=1000'))).toEqual({ limit: 1000, cursor: null });
    for (const query of ['limit=0', 'limit=1001', 'limit=-1', 'limit=2.5', 'limit=abc', 'limit=NaN', 'limit=Infinity']) {
      expect({ query, ...rejection(() => parsePage(new URLSearchParams(query))) }).toMatchObject({ query, code: 'invalid_request', status: 400 });
    }
  });
});

describe('API keys', () => {
  test('extract: missing, malformed (8-128 of [A-Za-z0-9_-], one header) or present', () => {
    expect(extractApiKey(undefined)).toEqual({ kind: 'missing' });
    expect(extractApiKey('')).toEqual({ kind: 'missing' });
    expect(extractApiKey('demo_free_key_123')).toEqual({ kind: 'present', key: 'demo_free_key_123' });
    expect(extractApiKey('a'.repeat(8))).toEqual({ kind: 'present', key: 'a'.repeat(8) });
    expect(extractApiKey('Z-9_'.repeat(32))).toEqual({ kind: 'present', key: 'Z-9_'.repeat(32) });
    for (const bad of ['a'.repeat(7), 'a'.repeat(129), 'has space1', 'dots.are.bad', 'plus+key12', 'ключключключ', ' leadingsp', 'trailing\n']) {
      expect({ bad, got: extractApiKey(bad) }).toEqual({ bad, got: { kind: 'malformed' } });
    }
    expect(extractApiKey(['demo_free_key_123', 'demo_free_key_123'])).toEqual({ kind: 'malformed' });
  });

  test('hash: SHA-256 as lower-case hex', () => {
    expect(hashApiKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashApiKey('demo_free_key_123')).toMatch(/^[0-9a-f]{64}$/);
    expect(hashApiKey('demo_free_key_123')).not.toBe(hashApiKey('demo_free_key_124'));
  });

  test('generate: "tg_" + 32 base64url characters, a valid key, different every time', () => {
    const keys = Array.from({ length: 1000 }, () => generateApiKey());
    for (const key of keys) {
      expect(key).toMatch(/^tg_[A-Za-z0-9_-]{32}$/);
      expect(API_KEY_FORMAT.test(key)).toBe(true);
      expect(extractApiKey(key)).toEqual({ kind: 'present', key });
    }
    expect(new Set(keys).size).toBe(keys.length);
  });

  test('record ids sort by creation time and are unique', () => {
    const times = [T0, T0 + 1, T0 + 1_000, T0 + 86_400_000, T0 * 2];
    const ids = times.map((t) => generateKeyId(t));
    expect([...ids].sort()).toEqual(ids);
    const same = Array.from({ length: 200 }, () => generateKeyId(T0));
    expect(new Set(same).size).toBe(200);
  });
});
