import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { burst, countStatuses, httpRequest } from '../support/http';
import { waitFor } from '../support/processes';
import { startUpstream, type Upstream } from '../support/upstream';
import { startRedis, type RedisServer } from '../support/redis';
import { EXACT, HOUR_TIERS, createKey, get } from './fixtures';

/* Routes (SPEC §10): the routes file and its reloads, auth none/optional, tiers, cost 0, several upstreams. */

let upstream: Upstream;
let jobs: Upstream;
beforeAll(async () => { [upstream, jobs] = await Promise.all([startUpstream(), startUpstream()]); });
afterAll(async () => { await Promise.all([upstream?.close(), jobs?.close()]); });

/** The hour-window tiers plus `anonymous` (3 per hour per client IP). */
const TIERS = { ...HOUR_TIERS, tiers: { ...HOUR_TIERS.tiers, anonymous: { limit: 3 } } };

interface Setup {
  dir: string;
  routesFile: string;
  gw: GatewayProcess;
}

async function startWithRoutes(routes: unknown, env: Record<string, string> = {}, tiers: unknown = TIERS): Promise<Setup> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-routes-'));
  const routesFile = path.join(dir, 'routes.json');
  const tiersFile = path.join(dir, 'tiers.json');
  writeFileSync(routesFile, JSON.stringify(routes));
  writeFileSync(tiersFile, JSON.stringify(tiers));
  const gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, TIERS_FILE: tiersFile, ROUTES_FILE: routesFile, KEYS_FILE: '', ...env } });
  return { dir, routesFile, gw };
}

async function adminRoutes(gw: GatewayProcess): Promise<Array<{ name: string }>> {
  return (await get(`${gw.adminUrl}/admin/routes`)).json<{ routes: Array<{ name: string }> }>().routes;
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

test('the routes file: shown by GET /admin/routes, reloaded on change, SIGHUP and POST /admin/routes/reload; an invalid file is rejected with every reason and the old routes stay', async () => {
  const { routesFile, gw } = await startWithRoutes({ routes: [] });
  try {
    expect(await adminRoutes(gw)).toEqual([]);
    // No routes: a request without a key is refused as in §3.
    expect((await get(`${gw.url}/health`)).status).toBe(401);

    // A change on disk is in force within 2 s without an admin call.
    writeFileSync(routesFile, JSON.stringify({ routes: [{ name: 'health', match: { path: '/health' }, auth: 'none' }] }));
    await waitFor('the file change in force', async () => (await get(`${gw.url}/health`)).status === 200, 2000);
    expect((await adminRoutes(gw)).map((r) => r.name)).toEqual(['health']);
    await gw.waitForOutput('"event":"routes.reloaded"');

    writeFileSync(routesFile, JSON.stringify({ routes: [
      { name: 'health', match: { path: '/health' }, auth: 'none', colour: 'red' },
      { name: 'bad-method', match: { methods: ['FETCH'], path: '/x' } },
      { name: 'expensive', match: { path: '/x' }, cost: 5000 },
      { name: 'gold', match: { path: '/y' }, tiers: ['gold'], limits: { platinum: { limit: 1 } } },
      { name: 'elsewhere', match: { path: '/z' }, upstream: 'ftp://jobs.internal' },
    ] }));
    const r = await httpRequest(`${gw.adminUrl}/admin/routes/reload`, { method: 'POST' });
    expect(r.status).toBe(400);
    const body = r.json<{ error: string; reasons: string[] }>();
    expect(body.error).toBe('invalid_request');
    const reasons = body.reasons.join('\n');
    for (const m of [/unknown field "colour"/, /"FETCH" is not one of/, /cost must be a whole number 0-1000; got 5000/, /tiers: "gold" is not a tier in force/, /limits.platinum: "platinum" is not a tier in force/, /upstream must be an http/]) {
      expect(reasons).toMatch(m);
    }
    await gw.waitForOutput('"event":"routes.rejected"');
    // The old routes stay in force.
    expect((await adminRoutes(gw)).map((x) => x.name)).toEqual(['health']);
    expect((await get(`${gw.url}/health`)).status).toBe(200);
    expect(metricValue((await get(`${gw.adminUrl}/metrics`)).body, 'tollgate_config_last_reload_ok{file="routes"}')).toBe(0);

    // SIGHUP reloads too.
    writeFileSync(routesFile, JSON.stringify({ routes: [{ name: 'status', match: { path: '/status' }, auth: 'none' }] }));
    process.kill(gw.pid, 'SIGHUP');
    await waitFor('SIGHUP reload in force', async () => (await adminRoutes(gw)).map((x) => x.name).join() === 'status', 3000);
    expect((await get(`${gw.url}/status`)).status).toBe(200);
    expect((await get(`${gw.url}/health`)).status).toBe(401);
    await gw.waitForOutput(/"event":"routes.reloaded"[^\n]*"actor":"SIGHUP"/);
    expect(metricValue((await get(`${gw.adminUrl}/metrics`)).body, 'tollgate_config_last_reload_ok{file="routes"}')).toBe(1);
  } finally {
    await gw.stop();
  }
});

test('a tiers reload that would drop a tier a route in force names is rejected with the reasons; the old tiers stay until the routes stop naming it', async () => {
  const { dir, routesFile, gw } = await startWithRoutes({ routes: [
    { name: 'public', match: { path: '/public*' }, auth: 'optional', limits: { anonymous: { limit: 2, windowSeconds: 3600 } } },
    { name: 'reports', match: { path: '/reports*' }, tiers: ['pro', 'anonymous'] },
  ] });
  const tiersFile = path.join(dir, 'tiers.json');
  try {
    writeFileSync(tiersFile, JSON.stringify(HOUR_TIERS));
    const r = await httpRequest(`${gw.adminUrl}/admin/tiers/reload`, { method: 'POST' });
    expect(r.status).toBe(400);
    const reasons = r.json<{ reasons: string[] }>().reasons;
    expect(reasons).toEqual(expect.arrayContaining([
      expect.stringMatching(/route "public" in force limits tier "anonymous"/),
      expect.stringMatching(/route "reports" in force allows tier "anonymous"/),
    ]));
    await gw.waitForOutput(/"event":"tiers.rejected"[^\n]*route \\"public\\" in force/);
    // The old tiers stay: the anonymous tier still answers, with the route's limit.
    expect(Object.keys((await get(`${gw.adminUrl}/admin/tiers`)).json<{ tiers: Record<string, unknown> }>().tiers)).toContain('anonymous');
    expect((await get(`${gw.url}/public/a`)).status).toBe(200);
    expect((await get(`${gw.url}/public/a`)).status).toBe(200);
    expect((await get(`${gw.url}/public/a`)).status).toBe(429);
    expect(metricValue((await get(`${gw.adminUrl}/metrics`)).body, 'tollgate_config_last_reload_ok{file="tiers"}')).toBe(0);

    // Routes first, then the tiers: both reloads go through.
    writeFileSync(routesFile, JSON.stringify({ routes: [{ name: 'reports', match: { path: '/reports*' }, tiers: ['pro'] }] }));
    expect((await httpRequest(`${gw.adminUrl}/admin/routes/reload`, { method: 'POST' })).status).toBe(200);
    const again = await httpRequest(`${gw.adminUrl}/admin/tiers/reload`, { method: 'POST' });
    expect(again.status).toBe(200);
    expect(Object.keys((await get(`${gw.adminUrl}/admin/tiers`)).json<{ tiers: Record<string, unknown> }>().tiers)).not.toContain('anonymous');
    expect(metricValue((await get(`${gw.adminUrl}/metrics`)).body, 'tollgate_config_last_reload_ok{file="tiers"}')).toBe(1);
  } finally {
    await gw.stop();
  }
});

test('auth none: no key, never limited or counted; auth optional: tier anonymous per client IP (TRUST_PROXY), a key still counts as itself; tiers → 403 tier_not_allowed; cost 0 never counted', async () => {
  const { gw } = await startWithRoutes({ routes: [
    { name: 'health', match: { path: '/health' }, auth: 'none' },
    { name: 'catalog', match: { methods: ['GET'], path: '/v1/catalog/*' }, auth: 'optional' },
    { name: 'jobs', match: { methods: ['POST'], path: '/v1/jobs' }, tiers: ['pro'] },
    { name: 'free-ride', match: { path: '/v1/ping' }, cost: 0 },
  ] }, { TRUST_PROXY: '127.0.0.1' });
  try {
    const free = await createKey(gw.adminUrl, 'free');
    const pro = await createKey(gw.adminUrl, 'pro');

    // auth none: 30 requests, no key, all 200, no rate-limit headers; a key's counter is untouched.
    const open = await burst(30, 10, () => get(`${gw.url}/health`));
    expect(countStatuses(open)).toEqual({ 200: 30 });
    expect(open[0].headers['x-ratelimit-limit']).toBeUndefined();
    const openWithKey = await burst(25, 5, () => get(`${gw.url}/health`, free.key));
    expect(countStatuses(openWithKey)).toEqual({ 200: 25 });

    // auth optional without a key: 3 per client IP, each IP counted apart.
    const fromA = await burst(5, 1, () => get(`${gw.url}/v1/catalog/items`, undefined, { 'x-forwarded-for': '198.51.100.1' }));
    const fromB = await burst(5, 1, () => get(`${gw.url}/v1/catalog/items`, undefined, { 'x-forwarded-for': '198.51.100.2' }));
    expect(fromA.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
    expect(fromB.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
    expect(fromA[0].headers['x-ratelimit-limit']).toBe('3');
    expect(fromA[3].json<{ tier: string }>().tier).toBe('anonymous');
    const seen = upstream.received.filter((r) => r.url === '/v1/catalog/items' && r.headers['x-tollgate-tier'] === 'anonymous');
    expect(seen).toHaveLength(6);
    expect(seen.every((r) => r.headers['x-tollgate-key-id'] === undefined)).toBe(true);
    // The same route with a key: counted as the key (limit 20), not as the IP.
    const keyed = await get(`${gw.url}/v1/catalog/items`, free.key, { 'x-forwarded-for': '198.51.100.1' });
    expect(keyed.status).toBe(200);
    expect(keyed.headers['x-ratelimit-limit']).toBe('20');
    expect(keyed.headers['x-ratelimit-remaining']).toBe('19');
    // A method the route does not list: the defaults (key required).
    expect((await httpRequest(`${gw.url}/v1/catalog/items`, { method: 'DELETE' })).status).toBe(401);

    // tiers: a free key on a pro-only route → 403, not counted; pro passes.
    const refused = await httpRequest(`${gw.url}/v1/jobs`, { method: 'POST', headers: { 'x-api-key': free.key }, body: '{}' });
    expect(refused.status).toBe(403);
    expect(refused.json()).toEqual({ error: 'tier_not_allowed', message: expect.any(String), requestId: expect.any(String) });
    expect((await httpRequest(`${gw.url}/v1/jobs`, { method: 'POST', headers: { 'x-api-key': pro.key }, body: '{}' })).status).toBe(200);
    // A trailing slash does not step around the route.
    expect((await httpRequest(`${gw.url}/v1/jobs/`, { method: 'POST', headers: { 'x-api-key': free.key }, body: '{}' })).status).toBe(403);

    // cost 0: authenticated (no key → 401) but never counted: 40 requests of a free key, then its counter is where it was.
    expect((await get(`${gw.url}/v1/ping`)).status).toBe(401);
    const pings = await burst(40, 10, () => get(`${gw.url}/v1/ping`, free.key));
    expect(countStatuses(pings)).toEqual({ 200: 40 });
    const after = await get(`${gw.url}/anything`, free.key);
    expect(after.headers['x-ratelimit-remaining']).toBe('18');

    const metrics = (await get(`${gw.adminUrl}/metrics`)).body;
    expect(metricValue(metrics, 'tollgate_requests_total{tier="anonymous",outcome="limited"}')).toBe(4);
  } finally {
    await gw.stop();
  }
});

test('auth optional without an anonymous tier in tiers.json: 401 missing_api_key as today', async () => {
  const { gw } = await startWithRoutes({ routes: [{ name: 'catalog', match: { path: '/v1/catalog/*' }, auth: 'optional' }] }, {}, HOUR_TIERS);
  try {
    const r = await get(`${gw.url}/v1/catalog/x`);
    expect(r.status).toBe(401);
    expect(r.json<{ error: string }>().error).toBe('missing_api_key');
  } finally {
    await gw.stop();
  }
});

test('two upstreams: each gets only its routes, bodies streamed both ways, over kept-alive connections', async () => {
  const { gw } = await startWithRoutes({ routes: [
    { name: 'jobs', match: { path: '/v1/jobs*' }, upstream: jobs.url },
    { name: 'jobs-download', match: { path: '/big' }, upstream: jobs.url },
  ] });
  try {
    const { key } = await createKey(gw.adminUrl, 'pro');
    const before = { main: upstream.received.length, jobs: jobs.received.length, jobsConns: jobs.connections() };
    const body = randomBytes(3 * 1024 * 1024);
    const digest = createHash('sha256').update(body).digest('hex');
    const up = await httpRequest(`${gw.url}/v1/jobs/upload?x=1`, { method: 'POST', headers: { 'x-api-key': key }, body });
    expect(up.status).toBe(200);
    expect(up.json<{ bodyLength: number; bodySha256: string; url: string }>()).toMatchObject({ bodyLength: body.length, bodySha256: digest, url: '/v1/jobs/upload?x=1' });
    const down = await get(`${gw.url}/big?bytes=${5 * 1024 * 1024}`, key);
    expect(down.status).toBe(200);
    expect(down.rawBody.length).toBe(5 * 1024 * 1024);
    for (let i = 0; i < 10; i++) expect((await get(`${gw.url}/v1/jobs/${i}`, key)).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await get(`${gw.url}/other/${i}`, key)).status).toBe(200);
    const jobsSaw = jobs.received.slice(before.jobs).map((r) => r.url);
    const mainSaw = upstream.received.slice(before.main).map((r) => r.url);
    expect(jobsSaw.every((u) => u.startsWith('/v1/jobs') || u.startsWith('/big?'))).toBe(true);
    expect(jobsSaw).toHaveLength(12);
    expect(mainSaw.some((u) => u.startsWith('/v1/jobs') || u.startsWith('/big'))).toBe(false);
    expect(mainSaw.filter((u) => u.startsWith('/other/'))).toHaveLength(10);
    // Sequential requests reuse the route's pool: not one connection each.
    expect(jobs.connections() - before.jobsConns).toBeLessThanOrEqual(2);
  } finally {
    await gw.stop();
  }
});

test('a routes reload that drops an upstream closes its kept-alive connections once its requests in flight end', async () => {
  // Idle connections would otherwise stay a minute: only the reload can close them in time.
  const archive = await startUpstream({ keepAliveMs: 60_000 });
  const { routesFile, gw } = await startWithRoutes({ routes: [
    { name: 'archive', match: { path: '/archive*' }, upstream: archive.url },
    { name: 'archive-slow', match: { path: '/slow' }, upstream: archive.url },
  ] });
  try {
    const { key } = await createKey(gw.adminUrl, 'pro');
    const first = await Promise.all([0, 1, 2].map((i) => get(`${gw.url}/archive/${i}`, key)));
    expect(first.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(archive.open()).toBeGreaterThanOrEqual(1);
    // A slow request is on its way when the route goes.
    const slow = get(`${gw.url}/slow?ms=800`, key);
    await waitFor('the slow request at the archive', async () => archive.received.some((r) => r.url.startsWith('/slow')), 3000);
    writeFileSync(routesFile, JSON.stringify({ routes: [] }));
    expect((await httpRequest(`${gw.adminUrl}/admin/routes/reload`, { method: 'POST' })).status).toBe(200);
    const done = await slow;
    expect(done.status).toBe(200);
    expect(done.json<{ url: string }>().url).toBe('/slow?ms=800');
    await waitFor('the archive pool closed', async () => archive.open() === 0, 5000);
    // The path now goes to UPSTREAM_URL, whose pool stays.
    const before = upstream.received.length;
    expect((await get(`${gw.url}/archive/3`, key)).status).toBe(200);
    expect(upstream.received.slice(before).map((r) => r.url)).toEqual(['/archive/3']);
  } finally {
    await gw.stop();
    await archive.close();
  }
});

test('cost 5: a free key (20 in NORMAL) gets 4 requests of the route, and its main counter shows all 20 used', async () => {
  const { gw } = await startWithRoutes({ routes: [{ name: 'search', match: { path: '/v1/search*' }, cost: 5 }] });
  try {
    const { key } = await createKey(gw.adminUrl, 'free');
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await get(`${gw.url}/v1/search?q=${i}`, key));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 429, 429]);
    expect(results.slice(0, 4).map((r) => r.headers['x-ratelimit-remaining'])).toEqual(['15', '10', '5', '0']);
    // The main counter is the key's own: a plain request is refused too.
    expect((await get(`${gw.url}/other`, key)).status).toBe(429);
  } finally {
    await gw.stop();
  }
});

describe('on a shared Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => { redis = await startRedis(); });
  afterAll(async () => { await redis?.stop(); });

  test('a route limit is exact across two instances, counted with the key\'s own counters in one store call per allowed request', async () => {
    const routes = { routes: [{ name: 'jobs', match: { methods: ['POST'], path: '/v1/jobs' }, tiers: ['pro'], limits: { pro: { limit: 10, windowSeconds: 3600 } } }] };
    const a = await startWithRoutes(routes, { REDIS_URL: redis.url, ...EXACT });
    const b = await startWithRoutes(routes, { REDIS_URL: redis.url, ...EXACT });
    try {
      const { key } = await createKey(a.gw.adminUrl, 'pro');
      // Warm both instances' key caches, then count only what the requests cost.
      expect((await get(`${a.gw.url}/warm`, key)).status).toBe(200);
      expect((await get(`${b.gw.url}/warm`, key)).status).toBe(200);
      await redis.resetStats();
      const results = await burst(30, 10, (i) => httpRequest(`${(i % 2 ? a : b).gw.url}/v1/jobs`, { method: 'POST', headers: { 'x-api-key': key }, body: `{"i":${i}}` }));
      expect(countStatuses(results)).toEqual({ 200: 10, 429: 20 });
      const limited = results.find((r) => r.status === 429);
      expect(limited?.json<{ error: string; limit: number }>()).toMatchObject({ error: 'rate_limited', limit: 10 });
      const stats = await redis.commandStats();
      const scripts = (stats.evalsha ?? 0) + (stats.eval ?? 0);
      // One script per allowed request; refused ones at most one each (then held by the deny cache).
      expect(scripts).toBeGreaterThanOrEqual(10);
      expect(scripts).toBeLessThanOrEqual(30);
      // The key's main counter counted only the 10 allowed (plus the 2 warm-ups): 150 - 12.
      expect((await get(`${a.gw.url}/other`, key)).headers['x-ratelimit-remaining']).toBe('137');
    } finally {
      await Promise.all([a.gw.stop(), b.gw.stop()]);
    }
  });

  test('one Redis round trip per allowed request with a route limit in force', async () => {
    const routes = { routes: [{ name: 'reports', match: { path: '/reports*' }, limits: { pro: { limit: 1000, windowSeconds: 3600 } } }] };
    const { gw } = await startWithRoutes(routes, { REDIS_URL: redis.url, ...EXACT });
    try {
      const pro = await createKey(gw.adminUrl, 'pro');
      expect((await get(`${gw.url}/reports/warm`, pro.key)).status).toBe(200);
      await redis.resetStats();
      const results = await burst(100, 10, (i) => get(`${gw.url}/reports/${i}`, pro.key));
      expect(countStatuses(results)).toEqual({ 200: 100 });
      const stats = await redis.commandStats();
      expect((stats.evalsha ?? 0) + (stats.eval ?? 0)).toBe(100);
      // Both counters moved in that one call: the route's and the key's own.
      const last = await get(`${gw.url}/reports/last`, pro.key, { 'x-request-id': 'x' });
      expect(last.headers['x-ratelimit-remaining']).toBe(String(150 - 102));
    } finally {
      await gw.stop();
    }
  });
});

test('WORKERS=2: a routes reload on the admin port is in force on both workers', async () => {
  const redis = await startRedis();
  const { routesFile, gw } = await startWithRoutes({ routes: [] }, { REDIS_URL: redis.url, ...EXACT, WORKERS: '2' });
  try {
    // Before: no routes, so a request without a key is refused on every worker.
    const before = await burst(20, 10, () => get(`${gw.url}/status`, undefined, { connection: 'close' }));
    expect(countStatuses(before)).toEqual({ 401: 20 });
    writeFileSync(routesFile, JSON.stringify({ routes: [{ name: 'status', match: { path: '/status' }, auth: 'none' }] }));
    const r = await httpRequest(`${gw.adminUrl}/admin/routes/reload`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(r.json<{ routes: Array<{ name: string }> }>().routes.map((x) => x.name)).toEqual(['status']);
    // New connections land on both workers (round-robin accept): every one serves the route.
    await waitFor('the route on both workers', async () => {
      const after = await burst(20, 10, () => get(`${gw.url}/status`, undefined, { connection: 'close' }));
      return countStatuses(after)[200] === 20;
    }, 3000);
  } finally {
    await gw.stop();
    await redis.stop();
  }
});
