import { startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest, type HttpResult } from '../support/http';
import { startRedis, type RedisServer } from '../support/redis';
import { waitFor } from '../support/processes';
import { startUpstream, type Upstream } from '../support/upstream';
import { get, type CreatedKey, EXACT } from './fixtures';

/* The admin port: auth, every route's happy path and bad inputs, key lifecycle (SPEC §4). */

const TOKEN = 'test-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
let upstream: Upstream;
let redis: RedisServer;
let a: GatewayProcess;
let b: GatewayProcess;

function admin(gw: GatewayProcess, method: string, path: string, body?: unknown, headers: Record<string, string> = AUTH): Promise<HttpResult> {
  return httpRequest(`${gw.adminUrl}${path}`, {
    method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await check()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startUpstream(), startRedis()]);
  const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, ADMIN_TOKEN: TOKEN };
  [a, b] = await Promise.all([startGateway({ env }), startGateway({ env })]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all([upstream?.close(), redis?.stop()]);
});

describe('admin auth', () => {
  test('missing or wrong token → 401 JSON on /admin/*; probes and metrics need none', async () => {
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: `Basic ${TOKEN}` }, { authorization: 'Bearer ' }]) {
      const r = await admin(a, 'GET', '/admin/health', undefined, headers);
      expect(r.status).toBe(401);
      expect(r.json()).toMatchObject({ error: 'unauthorized', message: expect.any(String) });
    }
    expect((await admin(a, 'GET', '/livez', undefined, {})).status).toBe(200);
    expect((await admin(a, 'GET', '/readyz', undefined, {})).status).toBe(200);
    expect((await admin(a, 'GET', '/metrics', undefined, {})).status).toBe(200);
    expect((await admin(a, 'GET', '/admin/health')).status).toBe(200);
  });

  test('unknown admin path → 404 JSON; wrong method → 405 JSON', async () => {
    const missing = await admin(a, 'GET', '/admin/nope');
    expect(missing.status).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'not_found' });
    const r = await admin(a, 'DELETE', '/admin/health');
    expect(r.status).toBe(405);
    expect(r.json()).toMatchObject({ error: 'method_not_allowed' });
  });

  test('a body over 64 KiB → 413 payload_too_large JSON (not a reset connection); the port keeps serving', async () => {
    const r = await admin(a, 'POST', '/admin/keys', JSON.stringify({ tier: 'pro', name: 'x'.repeat(100 * 1024) }));
    expect(r.status).toBe(413);
    expect(r.json()).toMatchObject({ error: 'payload_too_large' });
    expect((await admin(a, 'GET', '/admin/health')).status).toBe(200);
  });
});

describe('keys', () => {
  test('create: 201 with a random key of ≥ 32 characters shown once; get/list never show it or its hash', async () => {
    const r = await admin(a, 'POST', '/admin/keys', { tier: 'pro', name: 'acme' });
    expect(r.status).toBe(201);
    const k = r.json<CreatedKey>();
    expect(k).toEqual({ id: expect.any(String), key: expect.stringMatching(/^[A-Za-z0-9_-]{32,128}$/), tier: 'pro', name: 'acme', disabled: false, createdAt: expect.any(String) });
    expect(new Date(k.createdAt).toISOString()).toBe(k.createdAt);
    const one = await admin(a, 'GET', `/admin/keys/${k.id}`);
    expect(one.status).toBe(200);
    expect(one.json()).toEqual({ id: k.id, tier: 'pro', name: 'acme', disabled: false, createdAt: k.createdAt });
    expect(one.body).not.toContain(k.key);
    const list = await admin(a, 'GET', '/admin/keys?limit=1000');
    expect(list.body).not.toContain(k.key);
    expect(list.body).not.toMatch(/"hash"/);
    expect(list.json<{ keys: Array<{ id: string }> }>().keys.map((x) => x.id)).toContain(k.id);
  });

  test('import a given key; importing it twice is 400', async () => {
    const key = `imported_key_${Date.now()}`;
    const r = await admin(a, 'POST', '/admin/keys', { tier: 'free', name: 'imp', key });
    expect(r.status).toBe(201);
    expect(r.json<CreatedKey>().key).toBe(key);
    expect((await get(a.url, key)).status).toBe(200);
    const again = await admin(a, 'POST', '/admin/keys', { tier: 'free', name: 'imp', key });
    expect(again.status).toBe(400);
  });

  test('list pages with limit and cursor until next is null', async () => {
    for (let i = 0; i < 5; i++) expect((await admin(a, 'POST', '/admin/keys', { tier: 'free', name: `page-${i}` })).status).toBe(201);
    const all: string[] = [];
    let cursor = '';
    for (let pages = 0; pages < 100; pages++) {
      const r = await admin(a, 'GET', `/admin/keys?limit=2&cursor=${encodeURIComponent(cursor)}`);
      expect(r.status).toBe(200);
      const page = r.json<{ keys: Array<{ id: string }>; next: string | null }>();
      expect(page.keys.length).toBeLessThanOrEqual(2);
      all.push(...page.keys.map((k) => k.id));
      if (page.next === null) break;
      cursor = page.next;
    }
    expect(new Set(all).size).toBe(all.length);
    const full = (await admin(a, 'GET', '/admin/keys?limit=1000')).json<{ keys: Array<{ id: string }> }>().keys.map((k) => k.id);
    expect(all).toEqual(full);
  });

  test('bad inputs: malformed JSON, wrong types, unknown tier, unknown fields → 400; unknown id → 404', async () => {
    const bad: Array<[string, string, unknown]> = [
      ['POST', '/admin/keys', 'not json'],
      ['POST', '/admin/keys', { tier: 5, name: 'x' }],
      ['POST', '/admin/keys', { tier: 'platinum', name: 'x' }],
      ['POST', '/admin/keys', { tier: 'pro', name: 'x', extra: 1 }],
      ['POST', '/admin/keys', { tier: 'pro', name: 'x', key: 'short' }],
      ['POST', '/admin/keys', ['pro']],
      ['GET', '/admin/keys?limit=0', undefined],
      ['GET', '/admin/keys?limit=abc', undefined],
    ];
    for (const [method, path, body] of bad) {
      const r = await admin(a, method, path, body);
      expect([path, r.status]).toEqual([path, 400]);
      expect(r.json()).toMatchObject({ error: 'invalid_request', message: expect.any(String) });
    }
    const k = (await admin(a, 'POST', '/admin/keys', { tier: 'pro', name: 'p' })).json<CreatedKey>();
    for (const body of [{ tier: 'platinum' }, { disabled: 'yes' }, {}, { name: '' }, 'nope']) {
      const r = await admin(a, 'PATCH', `/admin/keys/${k.id}`, body);
      expect(r.status).toBe(400);
    }
    expect((await admin(a, 'GET', `/admin/keys/${k.id}`)).json()).toMatchObject({ tier: 'pro', name: 'p', disabled: false });
    for (const [method, path] of [['GET', '/admin/keys/k_missing'], ['PATCH', '/admin/keys/k_missing'], ['DELETE', '/admin/keys/k_missing'], ['POST', '/admin/keys/k_missing/rotate'], ['GET', '/admin/keys/k_missing/usage']]) {
      const r = await admin(a, method, path, method === 'PATCH' ? { name: 'x' } : undefined);
      expect([path, r.status]).toEqual([path, 404]);
      expect(r.json()).toMatchObject({ error: 'not_found' });
    }
  });

  test('lifecycle through the real gateway: create → works → rotate → old 401, new works → delete → 401', async () => {
    const k = (await admin(a, 'POST', '/admin/keys', { tier: 'pro', name: 'life' })).json<CreatedKey>();
    expect((await get(a.url, k.key)).status).toBe(200);
    const rotated = await admin(a, 'POST', `/admin/keys/${k.id}/rotate`);
    expect(rotated.status).toBe(200);
    const fresh = rotated.json<CreatedKey>();
    expect(fresh.id).toBe(k.id);
    expect(fresh.key).not.toBe(k.key);
    expect((await get(a.url, k.key)).json()).toMatchObject({ error: 'invalid_api_key' });
    expect((await get(a.url, fresh.key)).status).toBe(200);
    expect((await admin(a, 'DELETE', `/admin/keys/${k.id}`)).status).toBe(204);
    expect((await get(a.url, fresh.key)).status).toBe(401);
    expect((await admin(a, 'GET', `/admin/keys/${k.id}`)).status).toBe(404);
  });

  test('disable via PATCH → 401; re-enable → 200', async () => {
    const k = (await admin(a, 'POST', '/admin/keys', { tier: 'free', name: 'dis' })).json<CreatedKey>();
    expect((await get(a.url, k.key)).status).toBe(200);
    expect((await admin(a, 'PATCH', `/admin/keys/${k.id}`, { disabled: true })).json()).toMatchObject({ disabled: true });
    expect((await get(a.url, k.key)).status).toBe(401);
    expect((await admin(a, 'PATCH', `/admin/keys/${k.id}`, { disabled: false })).status).toBe(200);
    expect((await get(a.url, k.key)).status).toBe(200);
  });

  test('usage shows limit, remaining and reset without counting', async () => {
    const k = (await admin(a, 'POST', '/admin/keys', { tier: 'free', name: 'use' })).json<CreatedKey>();
    for (let i = 0; i < 3; i++) await get(a.url, k.key);
    const u1 = (await admin(a, 'GET', `/admin/keys/${k.id}/usage`)).json<Record<string, unknown>>();
    const u2 = (await admin(a, 'GET', `/admin/keys/${k.id}/usage`)).json<Record<string, unknown>>();
    expect(u1).toEqual({ id: k.id, tier: 'free', limit: 20, remaining: 17, reset: expect.any(Number), windows: [], quota: null });
    expect(u2).toEqual(u1);
    const next = await get(a.url, k.key);
    expect(next.headers['x-ratelimit-remaining']).toBe('16');
    expect(String(u1.reset)).toBe(next.headers['x-ratelimit-reset']);
  });

  test('tiers: GET shows what is in force', async () => {
    const r = await admin(a, 'GET', '/admin/tiers');
    expect(r.json()).toEqual({
      windowSeconds: 60, algorithm: 'sliding-window',
      tiers: {
        free: { limit: 10, burst: 20, degraded: 2, critical: 0, priority: 0, algorithm: 'sliding-window' },
        pro: { limit: 100, burst: 150, degraded: 100, critical: 100, priority: 1, algorithm: 'sliding-window' },
        enterprise: { limit: 1000, burst: 1000, degraded: 1000, critical: 1000, priority: 2, algorithm: 'sliding-window' },
      },
    });
  });
});

describe('two instances on one Redis', () => {
  test('revoke on one is refused on the other within 1 s', async () => {
    const k = (await admin(a, 'POST', '/admin/keys', { tier: 'pro', name: 'x' })).json<CreatedKey>();
    expect((await get(b.url, k.key)).status).toBe(200); // b caches it
    expect((await admin(a, 'DELETE', `/admin/keys/${k.id}`)).status).toBe(204);
    await within(1000, 'revoked key refused on b', async () => (await get(b.url, k.key)).status === 401);
  });

  test('a tier change on one is in force on the other within 1 s', async () => {
    const k = (await admin(a, 'POST', '/admin/keys', { tier: 'free', name: 'up' })).json<CreatedKey>();
    expect((await get(b.url, k.key)).headers['x-ratelimit-limit']).toBe('20');
    expect((await admin(a, 'PATCH', `/admin/keys/${k.id}`, { tier: 'enterprise' })).status).toBe(200);
    await within(1000, 'new tier on b', async () => (await get(b.url, k.key)).headers['x-ratelimit-limit'] === '1000');
  });

  test('a health change on one is in force on the other within 1 s', async () => {
    expect((await admin(a, 'PUT', '/admin/health', { status: 'DEGRADED' })).status).toBe(200);
    try {
      await within(1000, 'DEGRADED on b', async () => (await admin(b, 'GET', '/admin/health')).json<{ status: string }>().status === 'DEGRADED');
    } finally {
      await admin(a, 'POST', '/admin/health', { status: 'NORMAL' });
    }
    await within(1000, 'NORMAL on b', async () => (await admin(b, 'GET', '/admin/health')).json<{ status: string }>().status === 'NORMAL');
  });
});

describe('audit log', () => {
  test('key, health and tier events are JSON lines with "audit":true, the id and the caller, never a key', async () => {
    const k = (await admin(a, 'POST', '/admin/keys', { tier: 'pro', name: 'aud' })).json<CreatedKey>();
    await admin(a, 'PATCH', `/admin/keys/${k.id}`, { name: 'aud2' });
    const rotated = (await admin(a, 'POST', `/admin/keys/${k.id}/rotate`)).json<CreatedKey>();
    await admin(a, 'DELETE', `/admin/keys/${k.id}`);
    const auditLines = () => a.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.audit === true);
    // Only this test's health events: the earlier tests' lines may still be on their way
    // through the process's stdout, so they are told apart by time, not counted before.
    const since = new Date(Date.now() - 1).toISOString();
    const ours = () => auditLines().filter((e) => e.event === 'health.changed' && String(e.time) >= since);
    await admin(a, 'PUT', '/admin/health', { status: 'DEGRADED' });
    await admin(a, 'PUT', '/admin/health', { status: 'NORMAL' });
    await admin(a, 'POST', '/admin/tiers/reload');
    await a.waitForOutput('"event":"tiers.reloaded"');
    const events = auditLines();
    for (const ev of ['key.created', 'key.updated', 'key.rotated', 'key.revoked']) {
      expect(events.find((e) => e.event === ev && e.keyId === k.id)).toMatchObject({ actor: expect.stringMatching(/127\.0\.0\.1/) });
    }
    const health = await waitFor('both health events', async () => (ours().length >= 2 ? ours() : undefined), 5000);
    expect(health.map((e) => [e.from, e.to])).toEqual([['NORMAL', 'DEGRADED'], ['DEGRADED', 'NORMAL']]);
    for (const e of health) expect(e).toMatchObject({ cause: 'override', actor: expect.stringMatching(/127\.0\.0\.1/) });
    expect(events.find((e) => e.event === 'tiers.reloaded')).toMatchObject({ actor: expect.any(String) });
    expect(a.output()).not.toContain(k.key);
    expect(a.output()).not.toContain(rotated.key);
  });
});
