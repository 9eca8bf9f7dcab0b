import http from 'node:http';
import { Readable } from 'node:stream';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest, type HttpResult } from '../support/http';
import { sleep, waitFor } from '../support/processes';
import { startRedis, type RedisServer } from '../support/redis';
import { startUpstream, type Upstream } from '../support/upstream';

/*
 * SPEC §6: on SIGTERM the gateway stops accepting, /readyz turns 503, in-flight requests
 * finish within SHUTDOWN_TIMEOUT_MS, the store is closed, and it exits 0.
 */

const KEY = 'demo_enterprise_key_456';

let upstream: Upstream;
let redis: RedisServer;
const running: GatewayProcess[] = [];

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startUpstream(), startRedis()]);
});

afterAll(async () => {
  await Promise.all(running.map((gw) => gw.stop('SIGKILL')));
  await Promise.all([upstream?.close(), redis?.stop()]);
});

async function gateway(env: Record<string, string> = {}): Promise<GatewayProcess> {
  const gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...env } });
  running.push(gw);
  return gw;
}

// Own connections, not the shared keep-alive pool: the test watches exactly these sockets.
function request(url: string, opts: { method?: string; body?: Readable; timeoutMs?: number } = {}): Promise<HttpResult> {
  return httpRequest(url, { method: opts.method, headers: { 'x-api-key': KEY }, body: opts.body, agent: new http.Agent({ keepAlive: false }), timeoutMs: opts.timeoutMs ?? 10_000 });
}

function statusOf(url: string): Promise<number> {
  return httpRequest(url, { agent: new http.Agent({ keepAlive: false }), timeoutMs: 1000 }).then((r) => r.status);
}

/** Resolves once the upstream has received a request whose URL starts with `prefix`. */
function upstreamSaw(prefix: string): Promise<unknown> {
  return waitFor(`upstream to receive ${prefix}`, async () => upstream.received.some((r) => r.url.startsWith(prefix)), 5000, 10);
}

/** A request body sent in `chunks` pieces of 16 KiB, one every `everyMs`. */
function slowBody(chunks: number, everyMs: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent === chunks) {
        this.push(null);
        return;
      }
      sent += 1;
      setTimeout(() => this.push(Buffer.alloc(16 * 1024, 'x')), everyMs);
    },
  });
}

test('SIGTERM with a slow request in flight: it completes 200, /readyz 503 while draining, new connections refused, exit 0', async () => {
  const gw = await gateway();
  const started = Date.now();
  const slow = request(`${gw.url}/slow?ms=1500&tag=drain`);
  await upstreamSaw('/slow?ms=1500&tag=drain');
  const signalledAt = Date.now();
  process.kill(gw.pid, 'SIGTERM');

  await waitFor('/readyz 503 while draining', async () => (await statusOf(`${gw.adminUrl}/readyz`)) === 503, 1000, 20);
  const readyAfterMs = Date.now() - signalledAt;
  expect(readyAfterMs).toBeLessThan(500);
  // The proxy port no longer accepts connections.
  await expect(request(`${gw.url}/new`, { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  // /livez still answers while draining: the process is alive.
  expect(await statusOf(`${gw.adminUrl}/livez`)).toBe(200);

  const r = await slow;
  expect(r.status).toBe(200);
  expect(r.json<{ url: string }>().url).toBe('/slow?ms=1500&tag=drain');
  // Answered while draining: the client is told not to reuse the socket.
  expect(r.headers.connection).toBe('close');
  expect(Date.now() - started).toBeGreaterThanOrEqual(1400);

  const exit = await gw.exited;
  expect(exit).toEqual({ code: 0, signal: null });
  // Exits once the last request is done, well within the 10 s drain time.
  expect(Date.now() - signalledAt).toBeLessThan(5000);
  expect(gw.output()).toMatch(/"msg":"stopped"/);
});

test('SIGTERM during a slow upload: the upload completes and is answered 200, then exit 0', async () => {
  const gw = await gateway();
  const chunks = 10;
  const upload = request(`${gw.url}/upload?tag=drain-upload`, { method: 'POST', body: slowBody(chunks, 150) });
  // Well into the upload (about 1.5 s in all), the gateway has admitted it and streams it on.
  await sleep(400);
  const signalledAt = Date.now();
  process.kill(gw.pid, 'SIGTERM');
  await waitFor('/readyz 503 while draining', async () => (await statusOf(`${gw.adminUrl}/readyz`)) === 503, 1000, 20);

  const r = await upload;
  expect(r.status).toBe(200);
  expect(r.json()).toMatchObject({ method: 'POST', url: '/upload?tag=drain-upload', bodyLength: chunks * 16 * 1024 });
  expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(800);
  expect(await gw.exited).toEqual({ code: 0, signal: null });
});

test('SHUTDOWN_TIMEOUT_MS=500 with a request that never ends: exit 0 after about 0.5 s', async () => {
  const gw = await gateway({ SHUTDOWN_TIMEOUT_MS: '500' });
  const hung = request(`${gw.url}/hang?tag=drain-timeout`, { timeoutMs: 10_000 }).then(
    (r) => `answered ${r.status}`,
    (e: Error) => `failed: ${e.message}`,
  );
  await upstreamSaw('/hang?tag=drain-timeout');
  const signalledAt = Date.now();
  process.kill(gw.pid, 'SIGTERM');
  const exit = await gw.exited;
  const tookMs = Date.now() - signalledAt;
  expect(exit).toEqual({ code: 0, signal: null });
  expect(tookMs).toBeGreaterThanOrEqual(450);
  expect(tookMs).toBeLessThan(2500);
  // The request that outlived the drain time is cut, not left hanging.
  expect(await hung).toMatch(/^failed: .*(socket hang up|ECONNRESET)/);
  expect(gw.output()).toMatch(/drain time over/);
});

test('a second SIGTERM while draining exits at once', async () => {
  const gw = await gateway();
  const hung = request(`${gw.url}/hang?tag=second-signal`, { timeoutMs: 10_000 }).then(
    (r) => `answered ${r.status}`,
    (e: Error) => `failed: ${e.message}`,
  );
  await upstreamSaw('/hang?tag=second-signal');
  process.kill(gw.pid, 'SIGTERM');
  await waitFor('/readyz 503 while draining', async () => (await statusOf(`${gw.adminUrl}/readyz`)) === 503, 1000, 20);
  // Still draining: the default drain time is 10 s.
  await sleep(200);
  expect(await statusOf(`${gw.adminUrl}/livez`)).toBe(200);

  const secondAt = Date.now();
  process.kill(gw.pid, 'SIGTERM');
  const exit = await gw.exited;
  expect(Date.now() - secondAt).toBeLessThan(1000);
  // Not a clean shutdown (requests were cut), so not 0; but an exit of its own, not a kill.
  expect(exit).toEqual({ code: 1, signal: null });
  expect(await hung).toMatch(/^failed: .*(socket hang up|ECONNRESET)/);
  expect(gw.output()).toMatch(/second signal/);
});

test('SIGTERM while Redis hangs: the store is closed without waiting on it, exit 0', async () => {
  const gw = await gateway();
  expect((await request(`${gw.url}/before`)).status).toBe(200);
  redis.pause();
  try {
    const signalledAt = Date.now();
    process.kill(gw.pid, 'SIGTERM');
    expect(await gw.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(3000);
  } finally {
    redis.resume();
  }
});
