import { startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest } from '../support/http';
import { startRedis, type RedisServer } from '../support/redis';
import { startUpstream, type Upstream } from '../support/upstream';
import { get, EXACT } from './fixtures';

/* IP blocking after repeated bad keys, shared through Redis, and TRUST_PROXY (SPEC §3 steps 1–3). */

const GOOD = 'demo_pro_key_789';
let upstream: Upstream;
let redis: RedisServer;
let a: GatewayProcess;
let b: GatewayProcess;

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startUpstream(), startRedis()]);
  // The test runner is both the "proxy" (127.0.0.1, trusted) and the clients behind it.
  const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, TRUST_PROXY: '127.0.0.1/32', IP_BLOCK_S: '120' };
  [a, b] = await Promise.all([startGateway({ env }), startGateway({ env })]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all([upstream?.close(), redis?.stop()]);
});

function from(ip: string, key?: string): Record<string, string> {
  return { 'x-forwarded-for': ip, ...(key === undefined ? {} : { 'x-api-key': key }) };
}

test('10 bad keys: the 10th still 401, then 403 even with a valid key, on every instance; unblock restores', async () => {
  const ip = '198.51.100.10';
  for (let i = 1; i <= 10; i++) {
    const r = await get(a.url, undefined, from(ip, i % 2 === 0 ? `unknown_key_${i}` : 'bad!'));
    expect([i, r.status]).toEqual([i, 401]);
    expect(r.json()).toMatchObject({ error: 'invalid_api_key' });
  }
  const blocked = await get(a.url, undefined, from(ip, GOOD));
  expect(blocked.status).toBe(403);
  const body = blocked.json<{ error: string; retryAfter: number }>();
  expect(body).toMatchObject({ error: 'ip_blocked', message: expect.any(String) });
  expect(body.retryAfter).toBeGreaterThan(100);
  expect(body.retryAfter).toBeLessThanOrEqual(120);
  expect(blocked.headers['retry-after']).toBe(String(body.retryAfter));
  // Shared: the other instance blocks it within 1 s.
  const started = Date.now();
  while ((await get(b.url, undefined, from(ip, GOOD))).status !== 403) {
    if (Date.now() - started > 1000) throw new Error('block not in force on the second instance within 1 s');
    await new Promise((r) => setTimeout(r, 25));
  }
  // Other clients are unaffected; missing keys never count.
  expect((await get(a.url, undefined, from('198.51.100.11', GOOD))).status).toBe(200);

  const list = (await get(`${a.adminUrl}/admin/blocks`)).json<{ blocks: Array<{ ip: string; until: string }> }>();
  expect(list.blocks.find((x) => x.ip === ip)).toEqual({ ip, until: expect.any(String) });
  const metrics = (await get(`${a.adminUrl}/metrics`)).body;
  expect(metrics).toMatch(/^tollgate_blocked_ips [1-9]/m);
  expect(metrics).toMatch(/tollgate_requests_total\{tier="none",outcome="blocked"\} [1-9]/);

  expect((await httpRequest(`${a.adminUrl}/admin/blocks/${ip}`, { method: 'DELETE' })).status).toBe(204);
  expect((await httpRequest(`${a.adminUrl}/admin/blocks/${ip}`, { method: 'DELETE' })).status).toBe(404);
  expect((await get(a.url, undefined, from(ip, GOOD))).status).toBe(200);
  const s2 = Date.now();
  while ((await get(b.url, undefined, from(ip, GOOD))).status !== 200) {
    if (Date.now() - s2 > 1000) throw new Error('unblock not in force on the second instance within 1 s');
    await new Promise((r) => setTimeout(r, 25));
  }
  expect(a.output()).toMatch(/"event":"ip\.blocked"/);
  expect(a.output()).toMatch(/"event":"ip\.unblocked"/);
});

test('missing keys never count towards a block', async () => {
  const ip = '198.51.100.20';
  for (let i = 0; i < 15; i++) expect((await get(a.url, undefined, from(ip))).status).toBe(401);
  expect((await get(a.url, undefined, from(ip, GOOD))).status).toBe(200);
});

test('with TRUST_PROXY the forwarded client is blocked, not the proxy; behind an untrusted peer a spoofed X-Forwarded-For changes nothing', async () => {
  const ip = '198.51.100.30';
  for (let i = 0; i < 10; i++) await get(a.url, undefined, from(`${ip}`, `nope_nope_${i}`));
  expect((await get(a.url, undefined, from(ip, GOOD))).status).toBe(403);
  // The proxy itself (no forwarded hop) and other forwarded clients are fine.
  expect((await get(a.url, GOOD)).status).toBe(200);
  expect((await get(a.url, undefined, from('198.51.100.31', GOOD))).status).toBe(200);
  // A client cannot pick a hop left of the real one.
  expect((await get(a.url, undefined, from(`203.0.113.1, ${ip}`, GOOD))).status).toBe(403);
  await httpRequest(`${a.adminUrl}/admin/blocks/${ip}`, { method: 'DELETE' });
});

test('without TRUST_PROXY, X-Forwarded-For is ignored: the socket address is blocked', async () => {
  const g = await startGateway({ env: { UPSTREAM_URL: upstream.url, INVALID_KEY_LIMIT: '3' } });
  try {
    for (let i = 0; i < 3; i++) await get(g.url, undefined, from(`192.0.2.${i}`, `spoofed_${i}_key`));
    // All three came from 127.0.0.1, whatever they claimed: 127.0.0.1 is blocked.
    expect((await get(g.url, undefined, from('192.0.2.99', GOOD))).status).toBe(403);
    expect((await get(g.url, GOOD)).status).toBe(403);
    const blocks = (await get(`${g.adminUrl}/admin/blocks`)).json<{ blocks: Array<{ ip: string }> }>().blocks;
    expect(blocks.map((x) => x.ip)).toEqual(['127.0.0.1']);
  } finally {
    await g.stop();
  }
});
