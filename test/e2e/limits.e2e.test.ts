import { startGateway, type GatewayProcess } from '../support/gateway';
import { burst, countStatuses } from '../support/http';
import { startRedis, type RedisServer } from '../support/redis';
import { startUpstream, type Upstream } from '../support/upstream';
import { SHIPPED_TIERS, createKey, get, setHealth, writeTiers, EXACT } from './fixtures';

/*
 * Exact limits end to end: the real gateway process, a real upstream, a real Redis.
 */

let upstream: Upstream;
let redis: RedisServer;

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startUpstream(), startRedis()]);
});

afterAll(async () => {
  await Promise.all([upstream?.close(), redis?.stop()]);
});

describe.each(['memory', 'redis'] as const)('one gateway on the %s store', (store) => {
  let gw: GatewayProcess;

  beforeAll(async () => {
    gw = await startGateway({
      env: { UPSTREAM_URL: upstream.url, ...(store === 'redis' ? { REDIS_URL: redis.url, ...EXACT, REDIS_KEY_PREFIX: 'one:' } : {}) },
    });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  test('25 rapid requests of a fresh free key: exactly 20 × 200 then 5 × 429 with headers and body', async () => {
    const { key } = await createKey(gw.adminUrl, 'free');
    const results = [];
    for (let i = 0; i < 25; i++) results.push(await get(`${gw.url}/items?i=${i}`, key));
    expect(results.map((r) => r.status)).toEqual([...Array(20).fill(200), ...Array(5).fill(429)]);

    const first = results[0];
    expect(first.headers['x-ratelimit-limit']).toBe('20');
    expect(first.headers['x-ratelimit-remaining']).toBe('19');
    const reset = Number(first.headers['x-ratelimit-reset']);
    const nowS = Date.now() / 1000;
    // Sliding windows are aligned to the epoch: reset is the end of the current 60 s window.
    expect(reset % 60).toBe(0);
    expect(reset).toBeGreaterThan(nowS - 1);
    expect(reset).toBeLessThanOrEqual(nowS + 61);
    expect(results[19].headers['x-ratelimit-remaining']).toBe('0');
    expect(first.headers['retry-after']).toBeUndefined();

    const limited = results[20];
    expect(limited.headers['content-type']).toMatch(/^application\/json/);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(121);
    expect(limited.headers['x-ratelimit-limit']).toBe('20');
    expect(limited.headers['x-ratelimit-remaining']).toBe('0');
    expect(limited.json()).toEqual({ error: 'rate_limited', message: expect.any(String), requestId: expect.any(String), tier: 'free', limit: 20, retryAfter });
    // The upstream saw the allowed requests and none of the refused ones.
    expect(upstream.received.filter((r) => r.headers['x-tollgate-tier'] === 'free' && /^\/items\?i=(2[0-4])$/.test(r.url))).toHaveLength(0);
  });

  test('DEGRADED: free gets 2, pro 100, enterprise 1000; NORMAL restores the burst', async () => {
    const [free, pro, ent] = await Promise.all([createKey(gw.adminUrl, 'free'), createKey(gw.adminUrl, 'pro'), createKey(gw.adminUrl, 'enterprise')]);
    expect((await setHealth(gw.adminUrl, 'DEGRADED')).json()).toMatchObject({ status: 'DEGRADED' });
    try {
      const health = await get(`${gw.adminUrl}/admin/health`);
      expect(health.json()).toEqual({
        status: 'DEGRADED', since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), mode: 'manual', automatic: null,
        override: { status: 'DEGRADED', until: null, reason: null, by: '127.0.0.1' },
      });

      const freeResults = await burst(5, 1, () => get(gw.url, free.key));
      expect(freeResults.map((r) => r.status)).toEqual([200, 200, 429, 429, 429]);
      expect(freeResults[0].headers['x-ratelimit-limit']).toBe('2');

      const proResults = await burst(105, 10, () => get(gw.url, pro.key));
      expect(countStatuses(proResults)).toEqual({ 200: 100, 429: 5 });
      expect(proResults[0].headers['x-ratelimit-limit']).toBe('100');

      const entResults = await burst(20, 10, () => get(gw.url, ent.key));
      expect(countStatuses(entResults)).toEqual({ 200: 20 });
      expect(entResults[0].headers['x-ratelimit-limit']).toBe('1000');
    } finally {
      expect((await setHealth(gw.adminUrl, 'NORMAL')).status).toBe(200);
    }
    // Back to NORMAL: the pro key may burst to 150, so 50 more of its window are allowed.
    const again = await burst(55, 10, () => get(gw.url, pro.key));
    expect(countStatuses(again)).toEqual({ 200: 50, 429: 5 });
    expect(again[0].headers['x-ratelimit-limit']).toBe('150');
  });

  test('a bad health body is 400 and changes nothing', async () => {
    const before = (await get(`${gw.adminUrl}/admin/health`)).json();
    for (const body of ['{"status":"PANIC"}', 'not json', '{}', '["DEGRADED"]']) {
      const r = await (await import('../support/http')).httpRequest(`${gw.adminUrl}/admin/health`, { method: 'PUT', body });
      expect(r.status).toBe(400);
      expect(r.json()).toMatchObject({ error: 'invalid_request', message: expect.any(String) });
    }
    expect((await get(`${gw.adminUrl}/admin/health`)).json()).toEqual(before);
  });
});

describe.each(['sliding-window', 'gcra'] as const)('two gateways sharing one Redis (%s)', (algorithm) => {
  let a: GatewayProcess;
  let b: GatewayProcess;

  beforeAll(async () => {
    // An hour's window: GCRA gives a token back every 24 s instead of every 0.4 s, so a
    // slow machine cannot stretch the burst past a refill (SPEC §2's proviso).
    const tiersFile = writeTiers({ ...SHIPPED_TIERS, windowSeconds: 3600, algorithm });
    const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, TIERS_FILE: tiersFile, REDIS_KEY_PREFIX: `two-${algorithm}:` };
    [a, b] = await Promise.all([startGateway({ env }), startGateway({ env })]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('50 concurrent clients, one fresh pro key, 200 requests → exactly 150 allowed in total', async () => {
    const { key } = await createKey(a.adminUrl, 'pro');
    const results = await burst(200, 50, (i) => get(`${i % 2 === 0 ? a.url : b.url}/burst/${i}`, key));
    expect(countStatuses(results)).toEqual({ 200: 150, 429: 50 });
    for (const r of results.filter((x) => x.status === 429)) {
      expect(r.json()).toMatchObject({ error: 'rate_limited', tier: 'pro', limit: 150 });
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
  });

  test('a health switch on one instance is in force on the other within 1 s', async () => {
    const { key } = await createKey(a.adminUrl, 'free');
    expect((await setHealth(a.adminUrl, 'DEGRADED')).status).toBe(200);
    try {
      const started = Date.now();
      let seen = '';
      while (Date.now() - started < 1500) {
        seen = (await get(`${b.adminUrl}/admin/health`)).json<{ status: string }>().status;
        if (seen === 'DEGRADED') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen).toBe('DEGRADED');
      expect(Date.now() - started).toBeLessThan(1000 + 250); // 1 s contract, plus polling slack
      const r = await get(b.url, key);
      expect(r.headers['x-ratelimit-limit']).toBe('2');
    } finally {
      await setHealth(a.adminUrl, 'NORMAL');
    }
  });
});
