import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { burst, countStatuses, httpRequest } from '../support/http';
import { sleep, waitFor } from '../support/processes';
import { startRedis, type RedisServer } from '../support/redis';
import { startUpstream, type Upstream } from '../support/upstream';
import { createKey, get } from './fixtures';
import { auditLines, breakerState, metricValue, pacedLoad, summarize, waitForAudit } from './probes';

/*
 * SPEC §6: Redis dies or hangs under load; the gateway keeps answering fast through
 * STORE_FAILURE_MODE, logs the breaker's transitions once, and goes back to exact shared
 * limits when Redis answers again. Authentication never fails open.
 */

const LOAD_RATE = 200;
const LOAD_MS = 10_000;
const OUTAGE_AT_MS = 2_000;
/** SPEC: every request answered; generous for 2 shared cores running Redis, 2 gateways, the upstream and jest. */
const MAX_LATENCY_MS = 250;

let upstream: Upstream;

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
});

function startPair(env: Record<string, string>): Promise<[GatewayProcess, GatewayProcess]> {
  return Promise.all([startGateway({ env }), startGateway({ env })]);
}

async function stopAll(gws: ReadonlyArray<GatewayProcess | undefined>): Promise<void> {
  await Promise.all(gws.map((gw) => gw?.stop()));
}

describe.each([
  ['SIGKILLed, then restarted on the same port', 'kill'],
  ['SIGSTOPped (hung), then SIGCONTed', 'pause'],
] as const)('Redis %s under 200 req/s through two gateways (STORE_FAILURE_MODE=local)', (_title, fault) => {
  let redis: RedisServer;
  let gws: [GatewayProcess, GatewayProcess];

  beforeAll(async () => {
    redis = await startRedis();
    gws = await startPair({ UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, KEYS_FILE: '' });
  });
  afterAll(async () => {
    redis?.resume();
    await stopAll(gws ?? []);
    await redis?.stop();
  });

  test('no 5xx, every answer < 250 ms, breaker opens once and closes, then exact shared limits again', async () => {
    const [a, b] = gws;
    // Enterprise keys (1000 a minute): the load stays under the limit, so every answer must be 200.
    const keys = (await Promise.all([1, 2, 3, 4].map(() => createKey(a.adminUrl, 'enterprise')))).map((k) => k.key);
    // Verified on both instances before the outage.
    for (const gw of gws) for (const key of keys) expect((await get(gw.url, key)).status).toBe(200);

    const load = pacedLoad({ targets: [a.url, b.url], keys, ratePerSec: LOAD_RATE, durationMs: LOAD_MS });
    await sleep(OUTAGE_AT_MS);
    const outageAt = Date.now();
    if (fault === 'kill') await redis.kill();
    else redis.pause();

    let openAfterMs: number;
    let closedAfterMs: number;
    try {
      openAfterMs = await waitFor('both breakers open', async () => (await breakerState(a)) === 'open' && (await breakerState(b)) === 'open' && Date.now() - outageAt, 5000, 50);
      // The pause ends while the load still runs (nothing is lost); a killed Redis comes back empty,
      // so it is restarted after the load, when the keys it lost are no longer in use.
      if (fault === 'pause') {
        await sleep(Math.max(0, outageAt + 5000 - Date.now()));
        redis.resume();
        closedAfterMs = await waitForAudit(gws, 'breaker.closed', 10_000);
      }
    } finally {
      if (fault === 'pause') redis.resume();
    }
    const samples = await load;
    if (fault === 'kill') {
      await redis.restart();
      closedAfterMs = await waitForAudit(gws, 'breaker.closed', 10_000);
    }

    const s = summarize(samples);
    console.info(`redis ${fault}: breaker open on both after ${openAfterMs} ms, closed on both ${closedAfterMs!} ms after Redis was back; ` +
      `${samples.length} requests ${JSON.stringify(s.statuses)}, max ${s.maxMs} ms, p99 ${s.p99Ms} ms`);
    expect(s.errors).toEqual([]);
    expect(samples.filter((x) => x.status >= 500).map((x) => `${x.status} ${x.body}`)).toEqual([]);
    expect(s.statuses).toEqual({ 200: LOAD_RATE * (LOAD_MS / 1000) });
    expect(s.maxMs).toBeLessThan(MAX_LATENCY_MS);

    for (const gw of gws) {
      expect(await metricValue(gw, 'tollgate_store_fallback_total')).toBeGreaterThan(0);
      // Logged once per transition, not once per failed half-open probe.
      const opened = auditLines(gw, 'breaker.opened');
      expect(opened).toHaveLength(1);
      expect(opened[0]).toMatchObject({ mode: 'local', reason: expect.any(String) });
      expect(auditLines(gw, 'breaker.closed')).toHaveLength(1);
      expect(await breakerState(gw)).toBe('closed');
    }

    // Redis decides again: a fresh key's limit is shared exactly by both instances.
    const { key } = await createKey(b.adminUrl, 'free');
    const results = await burst(30, 6, (i) => get(`${gws[i % 2].url}/after/${i}`, key));
    expect(countStatuses(results)).toEqual({ 200: 20, 429: 10 });
  });
});

describe('failure modes while Redis is down', () => {
  let redis: RedisServer;
  const gw: Partial<Record<'local' | 'open' | 'closed', GatewayProcess>> = {};

  beforeAll(async () => {
    redis = await startRedis();
    const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, KEYS_FILE: '' };
    [gw.local, gw.open, gw.closed] = await Promise.all(
      (['local', 'open', 'closed'] as const).map((mode) => startGateway({ env: { ...env, STORE_FAILURE_MODE: mode } })),
    );
  });
  afterAll(async () => {
    await stopAll(Object.values(gw));
    await redis?.stop();
  });

  function the(mode: 'local' | 'open' | 'closed'): GatewayProcess {
    const g = gw[mode];
    if (g === undefined) throw new Error(`gateway ${mode} did not start`);
    return g;
  }

  test('closed → 503 store_unavailable and /readyz 503; open → 200 with Remaining 0; local → limits in process; a never-seen key → 503 everywhere', async () => {
    const verified = await createKey(the('local').adminUrl, 'free');
    const neverSeen = await createKey(the('local').adminUrl, 'pro');
    for (const mode of ['local', 'open', 'closed'] as const) {
      const r = await get(the(mode).url, verified.key);
      expect(r.status).toBe(200);
      expect(r.headers['x-ratelimit-remaining']).toBe(mode === 'local' ? '19' : mode === 'open' ? '18' : '17');
    }

    await redis.kill();
    try {
      // closed: refused with 503 JSON, and not ready, for as long as Redis is down.
      const closedGw = the('closed');
      await waitFor('/readyz 503 on the closed-mode gateway', async () => (await httpRequest(`${closedGw.adminUrl}/readyz`)).status === 503, 5000);
      for (let i = 0; i < 8; i++) {
        const r = await get(closedGw.url, verified.key);
        expect(r.status).toBe(503);
        expect(r.headers['content-type']).toMatch(/^application\/json/);
        expect(r.json()).toEqual({ error: 'store_unavailable', message: expect.any(String), requestId: expect.any(String) });
      }
      expect((await httpRequest(`${closedGw.adminUrl}/readyz`)).status).toBe(503);
      expect((await httpRequest(`${closedGw.adminUrl}/livez`)).status).toBe(200);

      // open: allowed, never claiming a quota it did not count.
      for (let i = 0; i < 25; i++) {
        const r = await get(the('open').url, verified.key);
        expect(r.status).toBe(200);
        expect(r.headers['x-ratelimit-remaining']).toBe('0');
        expect(r.headers['x-ratelimit-limit']).toBe('20');
      }
      expect((await httpRequest(`${the('open').adminUrl}/readyz`)).status).toBe(200);

      // local: the same limit, counted in this process alone.
      const local = await burst(25, 1, () => get(the('local').url, verified.key));
      expect(countStatuses(local)).toEqual({ 200: 20, 429: 5 });
      expect(local[24].json()).toMatchObject({ error: 'rate_limited', tier: 'free', limit: 20 });
      expect((await httpRequest(`${the('local').adminUrl}/readyz`)).status).toBe(200);

      // Authentication never fails open: a key this instance never verified cannot be trusted.
      for (const mode of ['local', 'open', 'closed'] as const) {
        const r = await get(the(mode).url, neverSeen.key);
        expect(r.status).toBe(503);
        expect(r.json()).toEqual({ error: 'store_unavailable', message: expect.any(String), requestId: expect.any(String) });
      }
      expect(upstream.received.some((x) => x.headers['x-tollgate-tier'] === 'pro')).toBe(false);
    } finally {
      await redis.restart();
    }

    // Back: the restarted Redis is empty, so a key created now is what proves it decides again.
    await waitFor('/readyz 200 on the closed-mode gateway', async () => (await httpRequest(`${the('closed').adminUrl}/readyz`)).status === 200, 10_000);
    await waitForAudit([the('local'), the('open'), the('closed')], 'breaker.closed', 10_000);
    const fresh = await createKey(the('closed').adminUrl, 'free');
    for (const mode of ['local', 'open', 'closed'] as const) {
      const r = await get(the(mode).url, fresh.key);
      expect(r.status).toBe(200);
    }
    const r = await get(the('closed').url, fresh.key);
    expect(r.headers['x-ratelimit-remaining']).toBe('16');
  });
});

describe('Redis down when the gateway starts', () => {
  let redis: RedisServer;
  const started: GatewayProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    await redis.kill();
  });
  afterAll(async () => {
    await stopAll(started);
    await redis?.stop();
  });

  test('it starts, serves with the failure mode, and recovers when Redis appears', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-keys-'));
    const keysFile = path.join(dir, 'keys.json');
    writeFileSync(keysFile, JSON.stringify({ keys: [{ key: 'startup_free_key_01', tier: 'free', name: 'startup free' }] }));
    const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, KEYS_FILE: keysFile };

    const [local, closed] = await Promise.all([
      startGateway({ env }),
      startGateway({ env: { ...env, STORE_FAILURE_MODE: 'closed' }, waitReady: false }),
    ]);
    started.push(local, closed);
    await waitFor('the closed-mode gateway to listen', async () => (await httpRequest(`${closed.adminUrl}/livez`)).status === 200, 15_000);
    expect((await httpRequest(`${closed.adminUrl}/readyz`)).status).toBe(503);
    expect((await httpRequest(`${local.adminUrl}/readyz`)).status).toBe(200);

    // Serving: no key → 401 as ever; the file's key was never verified → 503 in every mode.
    expect((await get(local.url)).json()).toMatchObject({ error: 'missing_api_key' });
    for (const gw of [local, closed]) {
      const r = await get(gw.url, 'startup_free_key_01');
      expect(r.status).toBe(503);
      expect(r.json()).toMatchObject({ error: 'store_unavailable' });
    }

    await redis.restart();
    await waitFor('/readyz 200 on the closed-mode gateway', async () => (await httpRequest(`${closed.adminUrl}/readyz`)).status === 200, 10_000);
    // The keys file is imported once Redis is there.
    await waitFor('the keys file imported', async () => {
      const r = await httpRequest(`${local.adminUrl}/admin/keys`);
      return r.status === 200 && r.json<{ keys: Array<{ name: string }> }>().keys.some((k) => k.name === 'startup free');
    }, 10_000);
    for (const gw of [local, closed]) expect(await breakerState(gw)).toBe('closed');
    const results = await burst(25, 5, (i) => get(i % 2 === 0 ? local.url : closed.url, 'startup_free_key_01'));
    expect(countStatuses(results)).toEqual({ 200: 20, 429: 5 });
  });
});
