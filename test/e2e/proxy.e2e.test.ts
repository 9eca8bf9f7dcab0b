import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { freePort } from '../support/ports';
import { httpRequest } from '../support/http';
import { waitFor } from '../support/processes';
import { startUpstream, type Upstream } from '../support/upstream';
import { get, writeTiers } from './fixtures';

/* The proxy port end to end (SPEC §3 step 5), on the memory store. */

const PRO = 'demo_pro_key_789';
let upstream: Upstream;
let gw: GatewayProcess;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, UPSTREAM_TIMEOUT_MS: '1000', TIERS_FILE: writeBigTiers() } });
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

/** The demo keys with limits high enough that these tests never hit them. */
function writeBigTiers(): string {
  return writeTiers({ windowSeconds: 60, tiers: { free: { limit: 10000 }, pro: { limit: 10000 }, enterprise: { limit: 10000 } } });
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

test('any method, path and query reach the upstream, with forwarding headers and the tier', async () => {
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const r = await httpRequest(`${gw.url}/a/b%20c?x=1&y=two`, {
      method, headers: { 'x-api-key': PRO, 'X-RateLimit-Limit': '99999', 'RateLimit-Policy': 'spoof', 'X-Tollgate-Tier': 'enterprise' }, body: method === 'GET' ? undefined : 'hello',
    });
    expect(r.status).toBe(200);
    const seen = r.json<{ method: string; url: string; headers: Record<string, string> }>();
    expect(seen.method).toBe(method);
    expect(seen.url).toBe('/a/b%20c?x=1&y=two');
    expect(seen.headers['x-tollgate-tier']).toBe('pro');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(`127.0.0.1:${gw.port}`);
    expect(seen.headers['x-ratelimit-limit']).toBeUndefined();
    expect(seen.headers['ratelimit-policy']).toBeUndefined();
  }
});

test('an existing X-Forwarded-For is appended to, and hop-by-hop headers are dropped', async () => {
  const r = await httpRequest(`${gw.url}/hop`, {
    headers: { 'x-api-key': PRO, 'x-forwarded-for': '203.0.113.7', connection: 'keep-alive, x-secret-hop', 'x-secret-hop': 'drop me', te: 'trailers', 'proxy-authorization': 'Basic abc' },
  });
  const seen = r.json<{ headers: Record<string, string> }>().headers;
  expect(seen['x-forwarded-for']).toMatch(/^203\.0\.113\.7, ?127\.0\.0\.1$/);
  expect(seen['x-secret-hop']).toBeUndefined();
  expect(seen.te).toBeUndefined();
  expect(seen['proxy-authorization']).toBeUndefined();
});

/** Sends `text` on a raw socket and resolves with everything read until the gateway's response ends. */
function rawExchange(text: string | string[], until: (data: string) => boolean): Promise<string> {
  const { port } = new URL(gw.url);
  return new Promise<string>((resolve, reject) => {
    const parts = Array.isArray(text) ? [...text] : [text];
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(parts.shift() ?? ''));
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      data += c;
      // The next part goes once the gateway has answered the previous (e.g. "100 Continue").
      if (parts.length > 0 && data.includes('\r\n\r\n')) socket.write(parts.shift() ?? '');
      if (until(data)) {
        socket.destroy();
        resolve(data);
      }
    });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(5000, () => reject(new Error(`no answer within 5 s; got ${JSON.stringify(data)}`)));
  });
}

/** The upstream's echo in a raw response: the JSON after the head. */
function echoOf(raw: string): { method: string; url: string; headers: Record<string, string>; bodyLength: number } {
  return JSON.parse(raw.slice(raw.lastIndexOf('\r\n\r\n') + 4)) as { method: string; url: string; headers: Record<string, string>; bodyLength: number };
}

const complete = (data: string): boolean => {
  const m = /content-length: (\d+)\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/i.exec(data.slice(data.lastIndexOf('HTTP/1.1 ')));
  return m !== null && Buffer.byteLength(m[2], 'latin1') >= Number(m[1]);
};

test('the upstream gets its own Host, X-Forwarded-Port from the client\'s Host, and repeated X-Forwarded-For lines joined', async () => {
  const raw = await rawExchange(
    `GET /fwd HTTP/1.1\r\nHost: api.example.com:8443\r\nx-api-key: ${PRO}\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 198.51.100.2\r\nX-Forwarded-Proto: https\r\nX-Tollgate-Tier: enterprise\r\nConnection: close\r\n\r\n`,
    complete,
  );
  expect(raw).toMatch(/^HTTP\/1\.1 200 /);
  const seen = echoOf(raw).headers;
  expect(seen.host).toBe(new URL(upstream.url).host);
  expect(seen['x-forwarded-for']).toBe('198.51.100.1, 198.51.100.2, 127.0.0.1');
  expect(seen['x-forwarded-port']).toBe('8443');
  expect(seen['x-forwarded-proto']).toBe('https, http');
  expect(seen['x-forwarded-host']).toBe('api.example.com:8443');
  expect(seen['x-tollgate-tier']).toBe('pro');
  expect(seen.connection).toBe('keep-alive');
});

test('upstream connections are kept alive and reused: 200 requests, 10 at a time, open at most 10', async () => {
  const before = upstream.connections();
  for (let round = 0; round < 20; round += 1) {
    const statuses = await Promise.all(Array.from({ length: 10 }, () => get(`${gw.url}/keep-alive`, PRO).then((r) => r.status)));
    expect(statuses).toEqual(Array(10).fill(200));
  }
  expect(upstream.connections() - before).toBeLessThanOrEqual(10);
});

test('a body-less POST reaches the upstream with Content-Length: 0, a GET and a DELETE with no body framing at all', async () => {
  const post = await rawExchange(`POST /empty HTTP/1.1\r\nHost: x\r\nx-api-key: ${PRO}\r\nConnection: close\r\n\r\n`, complete);
  const postSeen = echoOf(post);
  expect(postSeen.method).toBe('POST');
  expect(postSeen.headers['content-length']).toBe('0');
  expect(postSeen.headers['transfer-encoding']).toBeUndefined();
  const getSeen = echoOf(await rawExchange(`GET /empty HTTP/1.1\r\nHost: x\r\nx-api-key: ${PRO}\r\nConnection: close\r\n\r\n`, complete));
  expect(getSeen.headers['content-length']).toBeUndefined();
  expect(getSeen.headers['transfer-encoding']).toBeUndefined();
  // DELETE does not expect a body (RFC 9110): none is announced, in either framing.
  const deleteSeen = echoOf(await rawExchange(`DELETE /empty HTTP/1.1\r\nHost: x\r\nx-api-key: ${PRO}\r\nConnection: close\r\n\r\n`, complete));
  expect(deleteSeen.method).toBe('DELETE');
  expect(deleteSeen.headers['content-length'] ?? '0').toBe('0');
  expect(deleteSeen.headers['transfer-encoding']).toBeUndefined();
});

test('an interim 103 Early Hints from the upstream is passed over: the client gets the final 200', async () => {
  const r = await get(`${gw.url}/early-hints`, PRO);
  expect(r.status).toBe(200);
  expect(r.json<{ url: string }>().url).toBe('/early-hints');
});

test('Expect: 100-continue: the client hears 100 Continue from the gateway, the upstream gets the body without the Expect', async () => {
  const raw = await rawExchange([
    `PUT /expect HTTP/1.1\r\nHost: x\r\nx-api-key: ${PRO}\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    'hello',
  ], complete);
  expect(raw).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  const seen = echoOf(raw);
  expect(seen.bodyLength).toBe(5);
  expect(seen.headers.expect).toBeUndefined();
});

test('a chunked upload reaches the upstream whole, framed once (chunked, or by its length when it was all read before sending)', async () => {
  const raw = await rawExchange(
    `POST /chunked HTTP/1.1\r\nHost: x\r\nx-api-key: ${PRO}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
    complete,
  );
  const seen = echoOf(raw);
  expect(seen.bodyLength).toBe(11);
  const framing = [seen.headers['transfer-encoding'], seen.headers['content-length']];
  expect([['chunked', undefined], [undefined, '11']]).toContainEqual(framing);
});

test('the path goes on as sent (repeated slashes kept); an absolute-form target goes on as its path and query', async () => {
  const slashes = echoOf(await rawExchange(`GET //a//b/?q=//x HTTP/1.1\r\nHost: x\r\nx-api-key: ${PRO}\r\nConnection: close\r\n\r\n`, complete));
  expect(slashes.url).toBe('//a//b/?q=//x');
  const absolute = echoOf(await rawExchange(`GET http://api.example.com/abs/path?q=1 HTTP/1.1\r\nHost: api.example.com\r\nx-api-key: ${PRO}\r\nConnection: close\r\n\r\n`, complete));
  expect(absolute.url).toBe('/abs/path?q=1');
});

test('an upstream cut off mid-body closes the client\'s connection rather than leaving it waiting', async () => {
  const outcome = await new Promise<string>((resolve) => {
    const req = http.get(`${gw.url}/cut?bytes=200000`, { headers: { 'x-api-key': PRO }, agent: false }, (res) => {
      let got = 0;
      res.on('data', (c: Buffer) => { got += c.length; });
      res.on('end', () => resolve(`ended after ${got} bytes`));
      res.on('error', () => undefined);
      res.on('close', () => resolve(res.complete ? `complete after ${got} bytes` : `cut after ${got} bytes of ${res.headers['content-length']}`));
    });
    req.on('error', (e) => resolve(`error ${e.message}`));
    setTimeout(() => resolve('still waiting after 5 s'), 5000).unref();
  });
  expect(outcome).toBe('cut after 100000 bytes of 200000');
  expect((await get(`${gw.url}/fine`, PRO)).status).toBe(200);
});

test('a 5 MB upload arrives intact (hash compared)', async () => {
  const body = randomBytes(5 * 1024 * 1024);
  const r = await httpRequest(`${gw.url}/upload`, { method: 'POST', headers: { 'x-api-key': PRO, 'content-type': 'application/octet-stream' }, body });
  expect(r.status).toBe(200);
  const seen = r.json<{ bodyLength: number; bodySha256: string }>();
  expect(seen.bodyLength).toBe(body.length);
  expect(seen.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
});

test('a 50 MB streamed upload and a 50 MB download do not grow the gateway RSS by 50 MB', async () => {
  const before = rssKb(gw.pid);
  const chunk = Buffer.alloc(256 * 1024, 7);
  let sent = 0;
  const total = 50 * 1024 * 1024;
  const hash = createHash('sha256');
  const source = new Readable({
    read() {
      if (sent >= total) return this.push(null);
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  const up = await httpRequest(`${gw.url}/upload`, { method: 'POST', headers: { 'x-api-key': PRO, 'transfer-encoding': 'chunked' }, body: source, timeoutMs: 60000 });
  expect(up.status).toBe(200);
  expect(up.json<{ bodyLength: number; bodySha256: string }>()).toMatchObject({ bodyLength: total, bodySha256: hash.digest('hex') });
  const down = await new Promise<number>((resolve, reject) => {
    http.get(`${gw.url}/big?bytes=${total}`, { headers: { 'x-api-key': PRO } }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => { n += c.length; });
      res.on('end', () => resolve(n));
      res.on('error', reject);
    }).on('error', reject);
  });
  expect(down).toBe(total);
  // Streaming keeps growth to freed-but-retained chunk buffers (≈30 MB measured, however
  // large the body); holding either 50 MB body whole would add 50 MB on top of that.
  const grewMb = (rssKb(gw.pid) - before) / 1024;
  expect(grewMb).toBeLessThan(45);
});

test('upstream rate-limit headers are replaced by ours in gateway mode', async () => {
  const r = await get(`${gw.url}/upstream-ratelimit`, PRO);
  expect(r.status).toBe(200);
  expect(r.headers['x-ratelimit-limit']).toBe('10000');
  expect(r.headers.ratelimit).toBeUndefined();
  expect(r.headers['ratelimit-policy']).toBeUndefined();
});

test('the upstream response head: status and reason, repeated headers kept, hop-by-hop ones dropped, ours added', async () => {
  const res = await new Promise<http.IncomingMessage & { body: string }>((resolve, reject) => {
    http.get(`${gw.url}/response-head`, { headers: { 'x-api-key': PRO } }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => { body += c; });
      r.on('end', () => resolve(Object.assign(r, { body })));
    }).on('error', reject);
  });
  expect(res.statusCode).toBe(201);
  expect(res.statusMessage).toBe('Made It');
  expect(res.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
  expect(res.headers['x-custom']).toBe('kept');
  expect(res.headers['x-upstream-hop']).toBeUndefined();
  expect(res.headers['proxy-authenticate']).toBeUndefined();
  expect(res.headers['x-ratelimit-limit']).toBe('10000');
  expect(res.headers.connection).toBe('keep-alive');
  expect(res.body).toBe('chunk-one,chunk-two');
});

test('an HTTP/1.0 client gets the body without chunked encoding, then the connection closes', async () => {
  const { port } = new URL(gw.url);
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      socket.write(`GET /response-head HTTP/1.0\r\nHost: x\r\nx-api-key: ${PRO}\r\n\r\n`);
    });
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => { data += c; });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(5000, () => reject(new Error('no close within 5 s')));
  });
  const [head, body] = raw.split('\r\n\r\n');
  expect(head).toMatch(/^HTTP\/1\.1 201 Made It\r\n/);
  expect(head.toLowerCase()).not.toContain('transfer-encoding');
  expect(body).toBe('chunk-one,chunk-two');
});

test('slow upstream → 504 gateway_timeout; the gateway keeps serving', async () => {
  const r = await get(`${gw.url}/slow?ms=3000`, PRO);
  expect(r.status).toBe(504);
  expect(r.headers['x-ratelimit-limit']).toBe('10000');
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  expect(r.json()).toEqual({ error: 'gateway_timeout', message: expect.any(String), requestId: expect.any(String) });
  const hung = await get(`${gw.url}/hang`, PRO);
  expect(hung.status).toBe(504);
  expect((await get(`${gw.url}/fine`, PRO)).status).toBe(200);
});

test('upstream reset → 502 bad_gateway', async () => {
  const r = await get(`${gw.url}/reset`, PRO);
  expect(r.status).toBe(502);
  expect(r.headers['x-ratelimit-limit']).toBe('10000');
  expect(r.json()).toEqual({ error: 'bad_gateway', message: expect.any(String), requestId: expect.any(String) });
  expect((await get(`${gw.url}/fine`, PRO)).status).toBe(200);
});

test('upstream resets and timeouts leak no sockets', async () => {
  const { readdirSync } = await import('node:fs');
  const fds = () => readdirSync(`/proc/${gw.pid}/fd`).length;
  await get(`${gw.url}/warm`, PRO);
  const before = fds();
  // Connection: close, so our own sockets to the gateway are not what is counted.
  const agent = new http.Agent({ keepAlive: false });
  const once = (path: string) => httpRequest(`${gw.url}${path}`, { headers: { 'x-api-key': PRO }, agent });
  const failures = await Promise.all([
    ...Array.from({ length: 30 }, () => once('/reset')),
    ...Array.from({ length: 10 }, () => once('/hang')),
  ]);
  expect(failures.filter((r) => r.status === 502)).toHaveLength(30);
  expect(failures.filter((r) => r.status === 504)).toHaveLength(10);
  // Give the gateway a moment to close the sockets it destroyed, then compare.
  let after = fds();
  for (let i = 0; i < 40 && after > before + 2; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = fds();
  }
  expect(after).toBeLessThanOrEqual(before + 2);
  expect((await get(`${gw.url}/fine`, PRO)).status).toBe(200);
});

test('a client that disconnects, waiting or mid-upload, cancels the upstream request and is not counted as an upstream error', async () => {
  let closed = 0;
  let arrived = 0;
  const hang = http.createServer((req, res) => {
    arrived += 1;
    res.on('close', () => { closed += 1; });
    req.resume();
  });
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  const port = (hang.address() as AddressInfo).port;
  const g = await startGateway({ env: { UPSTREAM_URL: `http://127.0.0.1:${port}` } });
  try {
    // Waiting for the response head.
    const waiting = http.get(`${g.url}/wait`, { headers: { 'x-api-key': PRO }, agent: false });
    waiting.on('error', () => undefined);
    await waitFor('the request to reach the upstream', async () => arrived === 1, 5000);
    waiting.destroy();
    await waitFor('the upstream request to be cancelled', async () => closed === 1, 5000);
    // In the middle of its upload: 1 MB announced, 64 kB sent.
    const uploading = http.request(`${g.url}/upload`, { method: 'POST', headers: { 'x-api-key': PRO, 'content-length': String(1024 * 1024) }, agent: false });
    uploading.on('error', () => undefined);
    uploading.write(Buffer.alloc(64 * 1024, 1));
    await waitFor('the upload to reach the upstream', async () => arrived === 2, 5000);
    uploading.destroy();
    await waitFor('the upstream upload to be cancelled', async () => closed === 2, 5000);
    const metrics = (await get(`${g.adminUrl}/metrics`)).body;
    expect(metrics).not.toMatch(/outcome="upstream_error"\} [1-9]/);
    expect((await get(`${g.adminUrl}/livez`)).status).toBe(200);
  } finally {
    await g.stop();
    hang.closeAllConnections();
    await new Promise((r) => hang.close(r));
  }
});

test('WebSocket: an upgrade with a valid key is proxied and echoes; a refused one gets a real 401 with JSON', async () => {
  const wsUrl = gw.url.replace('http:', 'ws:');
  const ws = new WebSocket(`${wsUrl}/socket`, { headers: { 'x-api-key': PRO } });
  const echoed = await new Promise<string>((resolve, reject) => {
    ws.on('open', () => ws.send('hello through tollgate'));
    ws.on('message', (data) => resolve(String(data)));
    ws.on('error', reject);
  });
  expect(echoed).toBe('hello through tollgate');
  ws.close();

  const refused = await new Promise<{ status: number; body: string; type: string }>((resolve, reject) => {
    const bad = new WebSocket(`${wsUrl}/socket`);
    bad.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    bad.on('open', () => reject(new Error('upgrade without a key was accepted')));
    bad.on('error', () => undefined);
  });
  expect(refused.status).toBe(401);
  expect(refused.type).toMatch(/^application\/json/);
  expect(JSON.parse(refused.body)).toMatchObject({ error: 'missing_api_key' });
});

describe('upstream down', () => {
  test('connection refused → 502 bad_gateway JSON, and the gateway stays up', async () => {
    const port = await freePort();
    const g = await startGateway({ env: { UPSTREAM_URL: `http://127.0.0.1:${port}` } });
    try {
      const r = await get(`${g.url}/x`, PRO);
      expect(r.status).toBe(502);
      expect(r.json()).toEqual({ error: 'bad_gateway', message: expect.any(String), requestId: expect.any(String) });
      expect((await get(`${g.adminUrl}/livez`)).status).toBe(200);
      const metrics = (await get(`${g.adminUrl}/metrics`)).body;
      expect(metrics).toMatch(/tollgate_requests_total\{tier="pro",outcome="upstream_error"\} 1/);
    } finally {
      expect(await g.stop()).toBe(0);
    }
  });
});

test('an UPSTREAM_URL with a path puts that path in front of every request path', async () => {
  const g = await startGateway({ env: { UPSTREAM_URL: `${upstream.url}/api/v2/`, TIERS_FILE: writeBigTiers() } });
  try {
    const r = await get(`${g.url}/things?x=1`, PRO);
    expect(r.status).toBe(200);
    expect(r.json<{ url: string }>().url).toBe('/api/v2/things?x=1');
  } finally {
    await g.stop();
  }
});
