import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import WebSocket from 'ws';
import { makeCerts, type Certs } from '../support/certs';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest, type HttpResult } from '../support/http';
import { runToExit } from '../support/processes';
import { h2Connect, peerCertificate, tlsAgent, type H2Client } from '../support/tlsClient';
import { startUpstream, type Upstream } from '../support/upstream';
import { HOUR_TIERS, SHIPPED_TIERS, createKey, writeTiers } from './fixtures';

/*
 * SPEC §11: the proxy port over TLS behaves as over plain HTTP (§3 limits, headers, error
 * bodies, streamed bodies), the same assertions run over HTTPS/1.1 and over h2 on the one
 * port (ALPN), plus WebSocket over HTTPS and curl --http2.
 */

const PRO = 'demo_pro_key_789';
const FIVE_MB = 5 * 1024 * 1024;
/** An hour's window (nothing refills during the 429 test), and the demo keys' enterprise tier. */
const TIERS = { ...HOUR_TIERS, tiers: { ...HOUR_TIERS.tiers, enterprise: SHIPPED_TIERS.tiers.enterprise } };

let dir: string;
let certs: Certs;
let upstream: Upstream;
let gw: GatewayProcess;
let origin: string;
let agent: https.Agent;
let h2: H2Client;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tollgate-tls-'));
  certs = await makeCerts(dir);
  upstream = await startUpstream();
  gw = await startGateway({
    env: { UPSTREAM_URL: upstream.url, TIERS_FILE: writeTiers(TIERS), TLS_CERT_FILE: certs.cert, TLS_KEY_FILE: certs.key },
  });
  origin = `https://127.0.0.1:${gw.port}`;
  // HTTP/1.1 only in ALPN, as most HTTPS/1.1 clients (and Node's https) offer.
  agent = tlsAgent([certs.ca], { ALPNProtocols: ['http/1.1'] });
  h2 = await h2Connect(origin, [certs.ca]);
});

afterAll(async () => {
  await h2?.close();
  agent?.destroy();
  await gw?.stop();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Req {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

const clients: Array<[string, (p: string, r?: Req) => Promise<HttpResult>]> = [
  ['HTTPS/1.1', (p, r = {}) => httpRequest(`${origin}${p}`, { ...r, agent })],
  ['h2', (p, r = {}) => h2.request(p, r)],
];

test('ALPN: h2 and http/1.1 offered on the one port; the listener logs its protocol', async () => {
  expect((await peerCertificate(gw.port, [certs.ca], ['h2', 'http/1.1'])).alpn).toBe('h2');
  expect((await peerCertificate(gw.port, [certs.ca], ['http/1.1'])).alpn).toBe('http/1.1');
  expect(gw.output()).toContain('"protocol":"h2"');
});

test('h2 SETTINGS bound what one connection may hold: 128 concurrent streams, a 32 KiB header list', async () => {
  // The server's SETTINGS frame has surely arrived once a response has.
  await h2.request('/items');
  expect(h2.session.remoteSettings).toMatchObject({ maxConcurrentStreams: 128, maxHeaderListSize: 32 * 1024 });
});

describe.each(clients)('over %s', (name, request) => {
  test('200: proxied with rate-limit headers; the upstream sees https, the right Host and X-Forwarded-*, no pseudo-headers', async () => {
    const { key } = await createKey(gw.adminUrl, 'pro');
    const before = upstream.received.length;
    const r = await request(`/items?via=${encodeURIComponent(name)}`, { headers: { 'x-api-key': key } });
    expect(r.status).toBe(200);
    expect(r.headers['x-ratelimit-limit']).toBe('150');
    expect(r.headers['x-ratelimit-remaining']).toBe('149');
    expect(r.headers['content-type']).toBe('application/json');
    // No connection-specific header reaches an h2 client (Node would have refused to send it).
    if (name === 'h2') for (const h of ['connection', 'keep-alive', 'transfer-encoding']) expect(r.headers[h]).toBeUndefined();
    const seen = r.json<{ url: string; headers: Record<string, string> }>();
    expect(seen.url).toBe(`/items?via=${encodeURIComponent(name)}`);
    expect(seen.headers.host).toBe(`127.0.0.1:${upstream.port}`);
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-forwarded-host']).toBe(`127.0.0.1:${gw.port}`);
    expect(seen.headers['x-forwarded-port']).toBe(String(gw.port));
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-tollgate-tier']).toBe('pro');
    expect(Object.keys(seen.headers).filter((h) => h.startsWith(':'))).toEqual([]);
    expect(upstream.received.length).toBe(before + 1);
  });

  test('the upstream response head: repeated Set-Cookie kept in order, hop-by-hop headers dropped, ours added', async () => {
    const r = await request('/response-head', { headers: { 'x-api-key': PRO } });
    expect(r.status).toBe(201);
    expect(r.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(r.headers['x-custom']).toBe('kept');
    expect(r.headers['x-upstream-hop']).toBeUndefined();
    expect(r.headers['proxy-authenticate']).toBeUndefined();
    expect(r.headers['x-ratelimit-limit']).toBe('150');
    expect(r.headers['x-request-id']).toMatch(/./);
    expect(r.body).toBe('chunk-one,chunk-two');
  });

  test('401: missing and invalid keys get the JSON error', async () => {
    const missing = await request('/items');
    expect(missing.status).toBe(401);
    expect(missing.headers['content-type']).toBe('application/json');
    expect(missing.json()).toEqual({ error: 'missing_api_key', message: expect.any(String), requestId: expect.any(String) });
    const invalid = await request('/items', { headers: { 'x-api-key': 'no_such_key_000' } });
    expect(invalid.status).toBe(401);
    expect(invalid.json()).toEqual({ error: 'invalid_api_key', message: expect.any(String), requestId: expect.any(String) });
  });

  test('429: a fresh free key gets exactly 20 × 200, then 429 with Retry-After, rate-limit headers and JSON', async () => {
    const { key } = await createKey(gw.adminUrl, 'free');
    const statuses: number[] = [];
    let limited: HttpResult | null = null;
    for (let i = 0; i < 22; i++) {
      const r = await request(`/items?i=${i}`, { headers: { 'x-api-key': key } });
      statuses.push(r.status);
      if (r.status === 429) limited ??= r;
    }
    expect(statuses).toEqual([...Array(20).fill(200), 429, 429]);
    if (limited === null) throw new Error('no 429');
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(limited.headers['x-ratelimit-limit']).toBe('20');
    expect(limited.headers['x-ratelimit-remaining']).toBe('0');
    expect(limited.json()).toEqual({ error: 'rate_limited', message: expect.any(String), requestId: expect.any(String), tier: 'free', limit: 20, retryAfter });
  });

  test('5 MB up and 5 MB down arrive intact (streamed both ways)', async () => {
    const body = Buffer.alloc(FIVE_MB);
    for (let i = 0; i < body.length; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
    const up = await request('/upload', { method: 'POST', headers: { 'x-api-key': PRO, 'content-type': 'application/octet-stream' }, body });
    expect(up.status).toBe(200);
    const seen = up.json<{ bodyLength: number; bodySha256: string }>();
    expect(seen.bodyLength).toBe(FIVE_MB);
    expect(seen.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));

    const down = await request(`/big?bytes=${FIVE_MB}`, { headers: { 'x-api-key': PRO } });
    expect(down.status).toBe(200);
    expect(down.rawBody.length).toBe(FIVE_MB);
    expect(down.rawBody.equals(Buffer.alloc(FIVE_MB, 'a'))).toBe(true);
  });

  test('a body without Content-Length (chunked on HTTPS/1.1, plain DATA frames on h2) is forwarded whole', async () => {
    // Node's h2 client sends no Content-Length unless told; a streamed HTTPS/1.1 body is chunked.
    const body = Buffer.from('x'.repeat(100_000));
    const r = name === 'h2'
      ? await request('/upload', { method: 'PUT', headers: { 'x-api-key': PRO }, body })
      : await httpRequest(`${origin}/upload`, { method: 'PUT', headers: { 'x-api-key': PRO }, body: Readable.from([body]), agent });
    expect(r.status).toBe(200);
    expect(r.json<{ method: string; bodyLength: number }>()).toMatchObject({ method: 'PUT', bodyLength: 100_000 });
  });
});

test('h2: many requests multiplexed on one session (concurrent streams), each answered', async () => {
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => h2.request(`/items?n=${i}`, { headers: { 'x-api-key': PRO } })));
  expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
  expect(new Set(results.map((r) => r.json<{ url: string }>().url)).size).toBe(50);
});

test('WebSocket over HTTPS (HTTP/1.1 upgrade on the h2+h1 port): echoes; a refused upgrade gets 401', async () => {
  const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/socket`, { headers: { 'x-api-key': PRO }, ca: [readFileSync(certs.ca)] });
  const echoed = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo within 10 s')), 10000);
    ws.on('open', () => ws.send('hello over wss'));
    ws.on('message', (data) => { clearTimeout(timer); resolve(String(data)); });
    ws.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
  expect(echoed).toBe('hello over wss');
  ws.close();
  const upgrade = upstream.received.filter((r) => r.url === '/socket').at(-1);
  expect(upgrade?.headers['x-forwarded-proto']).toBe('wss');

  const refused = new WebSocket(`wss://127.0.0.1:${gw.port}/socket`, { ca: [readFileSync(certs.ca)] });
  const status = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10000);
    refused.on('unexpected-response', (_req, res) => { clearTimeout(timer); resolve(res.statusCode ?? 0); });
    refused.on('open', () => { clearTimeout(timer); reject(new Error('opened without a key')); });
    refused.on('error', () => undefined);
  });
  expect(status).toBe(401);
  refused.terminate();
});

test('curl --http2 (when curl has HTTP2): 200 over h2 with the rate-limit headers, 401 JSON', async () => {
  const version = await runToExit('curl -V', 'curl', ['-V'], { timeoutMs: 5000 }).catch(() => null);
  if (version === null || version.code !== 0 || !/\bHTTP2\b/.test(version.stdout)) {
    // The CI image has curl with nghttp2; a developer machine may not.
    console.warn('curl without HTTP2 support: the curl --http2 test did not run');
    return;
  }
  const curl = async (extra: string[]) => {
    const r = await runToExit('curl --http2', 'curl', ['--http2', '-sS', '--cacert', certs.ca, '-D', '-', '--max-time', '10', ...extra, `${origin}/items`], { timeoutMs: 15000 });
    expect(r.code).toBe(0);
    return r.stdout;
  };
  const ok = await curl(['-H', `x-api-key: ${PRO}`]);
  expect(ok).toMatch(/^HTTP\/2 200/);
  expect(ok).toMatch(/^x-ratelimit-limit: 150\r?$/m);
  expect(ok).toContain('"x-forwarded-proto":"https"');
  const refused = await curl([]);
  expect(refused).toMatch(/^HTTP\/2 401/);
  expect(refused).toContain('{"error":"missing_api_key"');
});
