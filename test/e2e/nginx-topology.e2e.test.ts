import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { NGINX_BIN, nginxArgs, renderNginxConf } from '../deploy/renderNginx';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { burst, countStatuses, httpRequest, type HttpResult } from '../support/http';
import { freePort, isPortFree } from '../support/ports';
import { spawnTracked, waitFor, waitForAlive, type TrackedChild } from '../support/processes';
import { startRedis, type RedisServer } from '../support/redis';
import { startUpstream, type Upstream } from '../support/upstream';
import { createKey, get, setHealth, EXACT } from './fixtures';

/*
 * The docker-compose topology without Docker (SPEC §7): the real nginx, started with the
 * repo's nginx/nginx.conf (rendered by test/deploy/renderNginx.ts: a free listen port and
 * the three gateway addresses in place of `server gateway:8080`), in front of three real
 * gateway processes that share one real redis-server, each with TRUST_PROXY=127.0.0.1/32
 * because nginx connects to them from 127.0.0.1. Shipped tiers and demo keys, as in compose.
 *
 * nginx round-robins per worker process over the three gateways (equal weights, so any three
 * consecutive picks of one worker reach all three). The rendered conf runs two workers, so of
 * N requests one worker handles at least N/2: 6 or more requests through nginx reach every
 * gateway. Per-gateway /metrics deltas show who served what.
 */

const PRO = 'demo_pro_key_789';
// Bounds: every wait is bounded; these are generous for two shared cores.
const NGINX_READY_MS = 10000;
const SYNC_MS = 1000; // SPEC §4: every instance applies a health change within 1 s
const WS_MS = 5000;

let upstream: Upstream | undefined;
let redis: RedisServer | undefined;
const gateways: GatewayProcess[] = [];
let nginx: TrackedChild | undefined;
let nginxDir: string | undefined;
let nginxPort = 0;
let nginxUrl = '';

function nginxLog(): string {
  if (nginxDir === undefined) return '';
  const read = (name: string): string => {
    try {
      return readFileSync(path.join(nginxDir ?? '', name), 'utf8');
    } catch {
      return '(none)';
    }
  };
  return `--- nginx error.log ---\n${read('error.log')}\n--- nginx output ---\n${nginx?.output() ?? ''}`;
}

// freePort() only shows the port was free a moment ago; like startRedis, a start that
// lost the port to another process is tried again on a new one (nothing else is retried).
const NGINX_START_ATTEMPTS = 3;

async function startNginx(addresses: string[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    nginxDir = mkdtempSync(path.join(tmpdir(), 'tollgate-topology-nginx-'));
    nginxPort = await freePort();
    nginxUrl = `http://127.0.0.1:${nginxPort}`;
    const conf = renderNginxConf({ listenPort: nginxPort, gateways: addresses, dir: nginxDir });
    // The rendered conf says `daemon off;`, so this pid is nginx's master.
    const child = await spawnTracked(`nginx :${nginxPort}`, NGINX_BIN, nginxArgs(conf));
    nginx = child;
    try {
      await waitForAlive(
        child,
        `nginx on ${nginxPort} to answer /nginx-health`,
        async () => (await httpRequest(`${nginxUrl}/nginx-health`, { timeoutMs: 1000 })).status === 200,
        NGINX_READY_MS,
        50,
      );
      return;
    } catch (error) {
      const log = nginxLog();
      if (!child.alive() && /Address already in use/.test(log) && attempt < NGINX_START_ATTEMPTS) {
        rmSync(nginxDir, { recursive: true, force: true });
        continue;
      }
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${log}`, { cause: error });
    }
  }
}

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startUpstream(), startRedis()]);
  const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, TRUST_PROXY: '127.0.0.1/32' };
  // All three settle before beforeAll does, so afterAll stops every one that started even
  // when a sibling failed.
  const started = await Promise.allSettled([0, 1, 2].map(() => startGateway({ env })));
  for (const s of started) if (s.status === 'fulfilled') gateways.push(s.value);
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  await startNginx(gateways.map((g) => `127.0.0.1:${g.port}`));
}, 50000);

afterAll(async () => {
  // nginx first: it holds keep-alive connections to the gateways. SIGTERM is nginx's fast
  // shutdown: the master stops its workers and exits after them (a SIGKILLed master would
  // leave the workers serving).
  const failures: string[] = [];
  if (nginx !== undefined) {
    const info = await nginx.stop('SIGTERM', 10000);
    if (info.signal !== null || info.code !== 0) failures.push(`nginx exited with ${JSON.stringify(info)}\n${nginxLog()}`);
    if (!(await isPortFree(nginxPort))) failures.push(`port ${nginxPort} still taken after nginx exited (an orphaned worker?)`);
  }
  const codes = await Promise.all(gateways.map((g) => g.stop()));
  codes.forEach((code, i) => {
    if (code !== 0) failures.push(`gateway ${i} exited with ${String(code)}\n${gateways[i]?.output() ?? ''}`);
  });
  await Promise.all([upstream?.close(), redis?.stop()]);
  if (nginxDir !== undefined) rmSync(nginxDir, { recursive: true, force: true });
  if (failures.length > 0) throw new Error(failures.join('\n'));
}, 60000);

function gw(i: number): GatewayProcess {
  const g = gateways[i];
  if (g === undefined) throw new Error(`gateway ${i} did not start`);
  return g;
}

type Samples = Map<string, number>;

/** `tollgate_requests_total` samples of one gateway, keyed `tier/outcome`. */
async function requestCounts(g: GatewayProcess): Promise<Samples> {
  const r = await get(`${g.adminUrl}/metrics`);
  expect(r.status).toBe(200);
  const samples: Samples = new Map();
  for (const line of r.body.split('\n')) {
    const m = /^tollgate_requests_total\{([^}]*)\} (\S+)$/.exec(line);
    if (m === null) continue;
    const labels = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    samples.set(`${labels.tier ?? '?'}/${labels.outcome ?? '?'}`, Number(m[2]));
  }
  return samples;
}

async function allCounts(): Promise<Samples[]> {
  return Promise.all(gateways.map(requestCounts));
}

/** Per gateway, how much `tier/outcome` grew between two snapshots. */
function deltas(before: Samples[], after: Samples[], ...series: string[]): number[] {
  return after.map((a, i) => series.reduce((sum, s) => sum + (a.get(s) ?? 0) - (before[i]?.get(s) ?? 0), 0));
}

function viaNginx(requestPath: string, headers: Record<string, string>): Promise<HttpResult> {
  return httpRequest(`${nginxUrl}${requestPath}`, { headers, timeoutMs: 10000 });
}

async function waitForAllHealth(status: string, since: number): Promise<number[]> {
  return Promise.all(
    gateways.map(async (g, i) => {
      const seen = await waitFor(
        `gateway ${i} to report ${status}`,
        async () => {
          const r = await get(`${g.adminUrl}/admin/health`);
          return r.json<{ status: string }>().status === status && { at: Date.now() - since };
        },
        SYNC_MS + 4000,
        20,
      );
      return seen.at;
    }),
  );
}

test('(a) a fresh free key gets exactly 20 of 25 through nginx, spread over all three gateways', async () => {
  const { key } = await createKey(gw(0).adminUrl, 'free');
  const before = await allCounts();

  const results = await burst(25, 5, (i) => viaNginx(`/items?i=${i}`, { 'x-api-key': key }));
  expect(countStatuses(results)).toEqual({ 200: 20, 429: 5 });

  const allowed = results.filter((r) => r.status === 200);
  for (const r of allowed) expect(r.headers['x-ratelimit-limit']).toBe('20');
  // One atomic decision per request in the shared store: the 20 allowed saw 19 … 0 left,
  // each exactly once, whichever gateway decided.
  const remaining = allowed.map((r) => Number(r.headers['x-ratelimit-remaining'])).sort((x, y) => x - y);
  expect(remaining).toEqual(Array.from({ length: 20 }, (_, i) => i));
  for (const r of results.filter((x) => x.status === 429)) {
    expect(r.json()).toEqual({ error: 'rate_limited', message: expect.any(String), requestId: expect.any(String), tier: 'free', limit: 20, retryAfter: expect.any(Number) });
  }
  // Only the allowed ones reached the API (the key header is passed through unchanged).
  expect(upstream?.received.filter((r) => r.headers['x-api-key'] === key)).toHaveLength(20);

  const after = await allCounts();
  const allowedPer = deltas(before, after, 'free/allowed');
  const limitedPer = deltas(before, after, 'free/limited');
  expect(allowedPer.reduce((a, b) => a + b, 0)).toBe(20);
  expect(limitedPer.reduce((a, b) => a + b, 0)).toBe(5);
  const servedPer = allowedPer.map((n, i) => n + (limitedPer[i] ?? 0));
  // Not one gateway answering everything: nginx spread the burst.
  expect(servedPer.every((n) => n > 0)).toBe(true);
});

/*
 * (b) Blocking by client address through nginx. nginx sets
 * `X-Forwarded-For: $proxy_add_x_forwarded_for`, i.e. whatever the client sent plus, on the
 * right, the address nginx's peer connected from. Here the test process is the client and
 * sits on 127.0.0.1, which is also nginx's own address and inside TRUST_PROXY, so the hop
 * nginx appends is a trusted one and the gateways step left past it. A client-sent
 * `X-Forwarded-For: 198.51.100.77` therefore plays exactly the part the real client's
 * address plays in production one hop further out (client → LB that appends it → nginx):
 * the gateways see "198.51.100.77, 127.0.0.1" and take the right-most untrusted hop. What is
 * under test is real: nginx's header handling from the repo's conf, the gateways' hop
 * choice, and the block shared through Redis.
 */
test('(b) the gateways see the forwarded client: 10 bad keys through nginx block that client on all three, nobody else', async () => {
  const client = '198.51.100.77';
  const other = '198.51.100.78';
  for (let i = 1; i <= 10; i++) {
    const r = await viaNginx('/bad', { 'x-forwarded-for': client, 'x-api-key': `not_a_real_key_${i}` });
    expect([i, r.status, r.json<{ error: string }>().error]).toEqual([i, 401, 'invalid_api_key']);
  }
  const blockedAt = Date.now();
  // The shared record names the forwarded address, and only it: not 127.0.0.1, the address
  // every connection to the gateways came from.
  const { blocks } = (await get(`${gw(0).adminUrl}/admin/blocks`)).json<{ blocks: Array<{ ip: string }> }>();
  expect(blocks.map((b) => b.ip)).toEqual([client]);
  // Every gateway holds it in process (what the request path checks) within 1 s.
  const seen = await Promise.all(
    gateways.map((g, i) =>
      waitFor(
        `gateway ${i} to hold one blocked IP`,
        async () => /^tollgate_blocked_ips 1$/m.test((await get(`${g.adminUrl}/metrics`)).body) && { at: Date.now() - blockedAt },
        SYNC_MS + 4000,
        20,
      ),
    ),
  );
  for (const s of seen) expect(s.at).toBeLessThanOrEqual(SYNC_MS);

  const before = await allCounts();
  for (let i = 0; i < 9; i++) {
    const r = await viaNginx('/after-block', { 'x-forwarded-for': client, 'x-api-key': PRO });
    expect([i, r.status]).toEqual([i, 403]);
    const body = r.json<{ error: string; retryAfter: number }>();
    expect(body).toMatchObject({ error: 'ip_blocked' });
    expect(r.headers['retry-after']).toBe(String(body.retryAfter));
  }
  const after = await allCounts();
  // Each of the three gateways refused the blocked client at least once.
  expect(deltas(before, after, 'none/blocked').every((n) => n > 0)).toBe(true);

  // Another client behind the same nginx, and the test process itself (no header: the
  // gateways see nginx's 127.0.0.1), are served.
  for (let i = 0; i < 6; i++) {
    expect([i, (await viaNginx('/other', { 'x-forwarded-for': other, 'x-api-key': PRO })).status]).toEqual([i, 200]);
    expect([i, (await viaNginx('/direct', { 'x-api-key': PRO })).status]).toEqual([i, 200]);
  }
  // What the API behind the gateways was told about the other client: it, then the hops.
  const seenUpstream = upstream?.received.filter((r) => r.url === '/other').at(-1);
  expect(String(seenUpstream?.headers['x-forwarded-for']).split(',')[0]).toBe(other);

  expect((await httpRequest(`${gw(1).adminUrl}/admin/blocks/${client}`, { method: 'DELETE' })).status).toBe(204);
});

test('(c) DEGRADED set on one gateway is in force on all three within 1 s, and through nginx', async () => {
  const { key } = await createKey(gw(1).adminUrl, 'free');
  const started = Date.now();
  try {
    const put = await setHealth(gw(2).adminUrl, 'DEGRADED');
    expect(put.status).toBe(200);
    const at = await waitForAllHealth('DEGRADED', started);
    for (const ms of at) expect(ms).toBeLessThanOrEqual(SYNC_MS);
    // The gauge follows on each instance too.
    for (const g of gateways) {
      expect((await get(`${g.adminUrl}/metrics`)).body).toMatch(/^tollgate_health_state\{state="DEGRADED"\} 1$/m);
    }

    const before = await allCounts();
    const results: HttpResult[] = [];
    for (let i = 0; i < 9; i++) results.push(await viaNginx(`/degraded?i=${i}`, { 'x-api-key': key }));
    expect(results.map((r) => r.status)).toEqual([200, 200, 429, 429, 429, 429, 429, 429, 429]);
    for (const r of results) expect(r.headers['x-ratelimit-limit']).toBe('2');
    const after = await allCounts();
    // Every gateway answered some of them, each with the DEGRADED limit.
    expect(deltas(before, after, 'free/allowed', 'free/limited').every((n) => n > 0)).toBe(true);
  } finally {
    const back = Date.now();
    expect((await setHealth(gw(0).adminUrl, 'NORMAL')).status).toBe(200);
    await waitForAllHealth('NORMAL', back);
  }
});

test('(d) a WebSocket connects through nginx and a gateway, and echoes; a refused upgrade is a real 401', async () => {
  const wsUrl = `ws://127.0.0.1:${nginxPort}/ws/chat`;
  const socket = new WebSocket(wsUrl, { headers: { 'x-api-key': PRO } });
  let timer: NodeJS.Timeout | undefined;
  try {
    const echoed = await new Promise<string>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no WebSocket echo through nginx within ${WS_MS} ms\n${nginxLog()}`)), WS_MS);
      socket.once('open', () => socket.send('hello through nginx and tollgate'));
      socket.once('message', (data: Buffer) => resolve(data.toString()));
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode ?? 0}`)));
    });
    expect(echoed).toBe('hello through nginx and tollgate');
  } finally {
    clearTimeout(timer);
    socket.terminate();
  }
  const upgrade = upstream?.received.filter((r) => r.url === '/ws/chat').at(-1);
  expect(upgrade?.headers['x-tollgate-tier']).toBe('pro');
  expect(upgrade?.headers.upgrade?.toLowerCase()).toBe('websocket');

  const bad = new WebSocket(wsUrl);
  try {
    const refused = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer to a keyless upgrade within ${WS_MS} ms`)), WS_MS);
      bad.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      });
      bad.once('open', () => reject(new Error('an upgrade without a key was accepted')));
      bad.on('error', () => undefined);
    });
    expect(refused.status).toBe(401);
    expect(refused.type).toMatch(/^application\/json/);
    expect(JSON.parse(refused.body)).toEqual({ error: 'missing_api_key', message: expect.any(String), requestId: expect.any(String) });
  } finally {
    clearTimeout(timer);
    bad.terminate();
  }
});
