import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { httpRequest } from '../support/http';
import { waitFor } from '../support/processes';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { burst, countStatuses } from '../support/http';
import { startRedis, type RedisServer } from '../support/redis';
import { startUpstream, type Upstream } from '../support/upstream';
import { SHIPPED_TIERS, createKey, get, setHealth, writeTiers, EXACT } from './fixtures';

/* WORKERS=2 end to end (issue 6): node:cluster workers sharing the proxy port. */

let upstream: Upstream;
let redis: RedisServer;
let gw: GatewayProcess;
let tiersFile: string;

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startUpstream(), startRedis()]);
  tiersFile = writeTiers({ ...SHIPPED_TIERS, windowSeconds: 3600 });
  gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, WORKERS: '2', TIERS_FILE: tiersFile } });
});
afterAll(async () => {
  await gw?.stop();
  await Promise.all([upstream?.close(), redis?.stop()]);
});

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

test('limits are exact across workers, and /metrics totals equal the requests sent', async () => {
  const { key } = await createKey(gw.adminUrl, 'pro');
  const results = await burst(200, 50, () => get(gw.url, key));
  expect(countStatuses(results)).toEqual({ 200: 150, 429: 50 });
  const metrics = (await get(`${gw.adminUrl}/metrics`)).body;
  expect(metricValue(metrics, 'tollgate_requests_total{tier="pro",outcome="allowed"}')).toBe(150);
  expect(metricValue(metrics, 'tollgate_requests_total{tier="pro",outcome="limited"}')).toBe(50);
  expect(metrics).toMatch(/^tollgate_health_state\{state="NORMAL"\} 1$/m);
});

test('an admin health switch applies to both workers', async () => {
  const [k1, k2] = await Promise.all([createKey(gw.adminUrl, 'free'), createKey(gw.adminUrl, 'free')]);
  expect((await setHealth(gw.adminUrl, 'DEGRADED')).status).toBe(200);
  try {
    await new Promise((r) => setTimeout(r, 300));
    // Many requests over fresh connections land on both workers (round-robin accept).
    const results = await burst(40, 20, (i) => get(gw.url, i % 2 === 0 ? k1.key : k2.key, { connection: 'close' }));
    for (const r of results) expect(r.headers['x-ratelimit-limit']).toBe('2');
    expect(countStatuses(results)).toEqual({ 200: 4, 429: 36 });
  } finally {
    await setHealth(gw.adminUrl, 'NORMAL');
  }
});

test('a rejected tiers file shows as tollgate_config_last_reload_ok 0 on the primary\'s /metrics until it is fixed', async () => {
  const lastOk = async () => metricValue((await get(`${gw.adminUrl}/metrics`)).body, 'tollgate_config_last_reload_ok{file="tiers"}');
  expect(await lastOk()).toBe(1);
  writeFileSync(tiersFile, '{ not json');
  try {
    // Each worker's file watcher rejects it; the primary aggregates the gauge by min.
    await waitFor('last_reload_ok 0', async () => (await lastOk()) === 0, 5000);
  } finally {
    writeFileSync(tiersFile, JSON.stringify({ ...SHIPPED_TIERS, windowSeconds: 3600 }));
  }
  await waitFor('last_reload_ok 1', async () => (await lastOk()) === 1, 5000);
});

test('a bad tiers file no file watcher sees, rejected by an admin reload on the primary, still shows as last_reload_ok 0', async () => {
  // ConfigMap layout: tiers.json → ..data/tiers.json, ..data → ..v1. A file rewritten inside
  // ..v1 is outside the watched directory: only the admin call (or SIGHUP) reads it.
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-workers-cm-'));
  mkdirSync(path.join(dir, '..v1'));
  const real = path.join(dir, '..v1', 'tiers.json');
  writeFileSync(real, JSON.stringify({ ...SHIPPED_TIERS, windowSeconds: 3600 }));
  symlinkSync('..v1', path.join(dir, '..data'));
  symlinkSync('..data/tiers.json', path.join(dir, 'tiers.json'));
  const g = await startGateway({ env: { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, WORKERS: '2', REDIS_KEY_PREFIX: 'w3:', TIERS_FILE: path.join(dir, 'tiers.json') } });
  try {
    const lastOk = async () => metricValue((await get(`${g.adminUrl}/metrics`)).body, 'tollgate_config_last_reload_ok{file="tiers"}');
    expect(await lastOk()).toBe(1);
    writeFileSync(real, '{ not json');
    expect((await httpRequest(`${g.adminUrl}/admin/tiers/reload`, { method: 'POST' })).status).toBe(400);
    // The primary passes the reload on to its workers, which reject the file too.
    await waitFor('last_reload_ok 0', async () => (await lastOk()) === 0, 5000);
    writeFileSync(real, JSON.stringify({ ...SHIPPED_TIERS, windowSeconds: 3600 }));
    expect((await httpRequest(`${g.adminUrl}/admin/tiers/reload`, { method: 'POST' })).status).toBe(200);
    await waitFor('last_reload_ok 1', async () => (await lastOk()) === 1, 5000);
  } finally {
    await g.stop();
  }
});

test('SIGTERM drains the workers and the primary exits 0', async () => {
  const g = await startGateway({ env: { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, WORKERS: '2', REDIS_KEY_PREFIX: 'w2:' } });
  expect((await get(`${g.url}/`, 'demo_pro_key_789')).status).toBe(200);
  expect(await g.stop('SIGTERM')).toBe(0);
  expect(g.output().match(/"msg":"stopped"/g)?.length).toBe(3);
});

test('WORKERS > 1 with the memory store is refused at startup with a reason', async () => {
  const { runGatewayToExit } = await import('../support/gateway');
  const r = await runGatewayToExit({ env: { UPSTREAM_URL: upstream.url, WORKERS: '2' } });
  expect(r.code).toBe(2);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/WORKERS.*redis/);
});
