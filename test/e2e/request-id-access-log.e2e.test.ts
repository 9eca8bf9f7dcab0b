import { startGateway, type GatewayProcess } from '../support/gateway';
import { burst, httpRequest, type HttpResult } from '../support/http';
import { sleep, waitFor } from '../support/processes';
import { startUpstream, type Upstream } from '../support/upstream';
import { HOUR_TIERS, createKey, get, writeTiers } from './fixtures';

/* Request ids and the access log (SPEC §10). */

let upstream: Upstream;
beforeAll(async () => { upstream = await startUpstream(); });
afterAll(async () => { await upstream?.close(); });

interface AccessLine {
  time: string;
  requestId: string;
  method: string;
  path: string;
  status: number;
  tier: string;
  keyId: string | null;
  clientIp: string;
  durationMs: number;
  upstreamMs: number | null;
  outcome: string;
}

function accessLines(gw: GatewayProcess): AccessLine[] {
  return gw.output().split('\n').filter((l) => l.includes('"access":true')).map((l) => JSON.parse(l) as AccessLine);
}

async function lineFor(gw: GatewayProcess, requestId: string): Promise<AccessLine> {
  let line: AccessLine | undefined;
  await waitFor(`the access-log line of ${requestId}`, async () => {
    line = accessLines(gw).find((l) => l.requestId === requestId);
    return line !== undefined;
  }, 5000);
  return line as AccessLine;
}

function start(env: Record<string, string> = {}): Promise<GatewayProcess> {
  return startGateway({ env: { UPSTREAM_URL: upstream.url, TIERS_FILE: writeTiers(HOUR_TIERS), KEYS_FILE: '', ...env } });
}

describe('one gateway, access log on', () => {
  let gw: GatewayProcess;
  beforeAll(async () => { gw = await start(); });
  afterAll(async () => { await gw?.stop(); });

  test('a valid client X-Request-Id goes to the upstream, comes back, and is in the access-log line; traceparent passes untouched', async () => {
    const { id, key } = await createKey(gw.adminUrl, 'pro');
    const given = 'client-req_0001:abc/XYZ';
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const r = await get(`${gw.url}/items/1?token=hide-me`, key, { 'x-request-id': given, traceparent, tracestate: 'k=v' });
    expect(r.status).toBe(200);
    expect(r.headers['x-request-id']).toBe(given);
    const seen = r.json<{ headers: Record<string, string> }>().headers;
    expect(seen['x-request-id']).toBe(given);
    expect(seen.traceparent).toBe(traceparent);
    expect(seen.tracestate).toBe('k=v');
    expect(seen['x-tollgate-key-id']).toBe(id);
    expect(seen['x-api-key']).toBe(key);
    const line = await lineFor(gw, given);
    expect(line).toMatchObject({ method: 'GET', path: '/items/1', status: 200, tier: 'pro', keyId: id, clientIp: '127.0.0.1', outcome: 'allowed' });
    expect(typeof line.durationMs).toBe('number');
    expect(typeof line.upstreamMs).toBe('number');
    expect(Number.isNaN(Date.parse(line.time))).toBe(false);
  });

  test('no or an invalid X-Request-Id: one is generated, the same upstream and back; each differs', async () => {
    const { key } = await createKey(gw.adminUrl, 'pro');
    const ids = new Set<string>();
    for (const given of [undefined, '', 'has space', 'x'.repeat(129), 'ümlaut']) {
      const headers: Record<string, string> = given === undefined ? {} : { 'x-request-id': given };
      const r = await get(`${gw.url}/items`, key, headers);
      const id = String(r.headers['x-request-id']);
      expect(id).toMatch(/^[\x21-\x7e]{1,128}$/);
      expect(id).not.toBe(given);
      expect(r.json<{ headers: Record<string, string> }>().headers['x-request-id']).toBe(id);
      ids.add(id);
      await lineFor(gw, id);
    }
    expect(ids.size).toBe(5);
    // 128 characters are kept.
    const long = 'y'.repeat(128);
    expect((await get(`${gw.url}/items`, key, { 'x-request-id': long })).headers['x-request-id']).toBe(long);
  });

  test('error responses carry the id in the header and as requestId in the body: 401, 429, 502', async () => {
    const missing = await get(`${gw.url}/x`, undefined, { 'x-request-id': 'no-key-1' });
    expect(missing.status).toBe(401);
    expect(missing.headers['x-request-id']).toBe('no-key-1');
    expect(missing.json<{ requestId: string }>().requestId).toBe('no-key-1');
    expect((await lineFor(gw, 'no-key-1'))).toMatchObject({ status: 401, outcome: 'unauthorized', keyId: null, tier: 'none' });

    const { id, key } = await createKey(gw.adminUrl, 'free');
    const results = await burst(21, 1, (i) => get(`${gw.url}/items?i=${i}`, key, { 'x-request-id': `burst-${i}` }));
    const limited = results[20];
    expect(limited.status).toBe(429);
    expect(limited.headers['x-request-id']).toBe('burst-20');
    expect(limited.json<{ requestId: string; error: string }>()).toMatchObject({ error: 'rate_limited', requestId: 'burst-20' });
    expect(await lineFor(gw, 'burst-20')).toMatchObject({ status: 429, outcome: 'limited', keyId: id, tier: 'free', upstreamMs: null });

    const pro = await createKey(gw.adminUrl, 'pro');
    const reset = await get(`${gw.url}/reset`, pro.key, { 'x-request-id': 'reset-1' });
    expect(reset.status).toBe(502);
    expect(reset.headers['x-request-id']).toBe('reset-1');
    expect(reset.json<{ requestId: string }>().requestId).toBe('reset-1');
    expect(await lineFor(gw, 'reset-1')).toMatchObject({ status: 502, outcome: 'upstream_error' });
  });

  test('over a run with many keys, no access-log line holds a key or a query string', async () => {
    const keys = await Promise.all(Array.from({ length: 25 }, (_, i) => createKey(gw.adminUrl, i % 2 ? 'pro' : 'free')));
    const results: HttpResult[] = [];
    for (const k of keys) {
      for (let i = 0; i < 4; i++) {
        results.push(await get(`${gw.url}/search/${i}?q=needle-${k.id}&api_key=${k.key}`, k.key, { 'x-request-id': `many-${k.id}-${i}` }));
      }
    }
    expect(results.every((r) => r.status === 200)).toBe(true);
    await lineFor(gw, `many-${keys[24].id}-3`);
    const lines = accessLines(gw).filter((l) => l.requestId.startsWith('many-'));
    expect(lines).toHaveLength(100);
    const text = gw.output();
    for (const k of keys) expect(text).not.toContain(k.key);
    for (const l of lines) {
      expect(l.path).not.toContain('?');
      expect(JSON.stringify(l)).not.toContain('needle');
      expect(l.keyId).toBe(l.requestId.split('-')[1]);
    }
  });
});

test('ACCESS_LOG_SAMPLE=0 drops the 2xx lines but keeps every other status; ACCESS_LOG=false writes none', async () => {
  const sampled = await start({ ACCESS_LOG_SAMPLE: '0' });
  try {
    const { key } = await createKey(sampled.adminUrl, 'pro');
    for (let i = 0; i < 10; i++) expect((await get(`${sampled.url}/ok`, key, { 'x-request-id': `ok-${i}` })).status).toBe(200);
    expect((await get(`${sampled.url}/nokey`, undefined, { 'x-request-id': 'refused-1' })).status).toBe(401);
    await lineFor(sampled, 'refused-1');
    expect(accessLines(sampled).filter((l) => l.requestId.startsWith('ok-'))).toHaveLength(0);
  } finally {
    await sampled.stop();
  }
  const off = await start({ ACCESS_LOG: 'false' });
  try {
    const { key } = await createKey(off.adminUrl, 'pro');
    expect((await get(`${off.url}/ok`, key)).status).toBe(200);
    expect((await get(`${off.url}/nokey`)).status).toBe(401);
    await sleep(300);
    expect(accessLines(off)).toHaveLength(0);
  } finally {
    await off.stop();
  }
});

test('FORWARD_API_KEY=false: the upstream never sees the key header; X-Tollgate-Key-Id and X-Tollgate-Identity are ours, client-sent ones replaced', async () => {
  const gw = await start({ FORWARD_API_KEY: 'false' });
  try {
    const { id, key } = await createKey(gw.adminUrl, 'pro');
    const r = await get(`${gw.url}/items`, key, { 'x-tollgate-key-id': 'spoofed', 'x-tollgate-identity': 'spoofed' });
    expect(r.status).toBe(200);
    const seen = r.json<{ headers: Record<string, string> }>().headers;
    expect(seen['x-api-key']).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain(key);
    expect(seen['x-tollgate-key-id']).toBe(id);
    // A key record without an identity: the header is not sent (a spoofed one neither).
    expect(seen['x-tollgate-identity']).toBeUndefined();
    // A key with an identity (SPEC §9): X-Tollgate-Identity carries it.
    const created = await httpRequest(`${gw.adminUrl}/admin/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tier: 'pro', name: 'acme-1', identity: 'acme.corp' }) });
    expect(created.status).toBe(201);
    const withIdentity = created.json<{ id: string; key: string }>();
    const r2 = await get(`${gw.url}/items`, withIdentity.key, { 'x-tollgate-identity': 'spoofed' });
    const seen2 = r2.json<{ headers: Record<string, string> }>().headers;
    expect(seen2['x-tollgate-identity']).toBe('acme.corp');
    expect(seen2['x-tollgate-key-id']).toBe(withIdentity.id);
  } finally {
    await gw.stop();
  }
});

test('SIGTERM under load: every request that got a response has its access-log line', async () => {
  const gw = await start();
  const { key } = await createKey(gw.adminUrl, 'pro');
  const answered: string[] = [];
  let n = 0;
  let stop = false;
  // 40 clients, each sending requests (some slow) back to back until the gateway goes away.
  const clients = Array.from({ length: 40 }, async (_, c) => {
    while (!stop) {
      const id = `term-${c}-${n++}`;
      try {
        const r = await httpRequest(`${gw.url}/${n % 5 === 0 ? 'slow?ms=200' : 'items'}`, { headers: { 'x-api-key': key, 'x-request-id': id }, timeoutMs: 10000 });
        if (r.status > 0) answered.push(id);
      } catch {
        stop = true;
      }
    }
  });
  await sleep(1500);
  const exited = gw.stop('SIGTERM');
  await Promise.all(clients.map((p) => p.catch(() => undefined)));
  stop = true;
  expect(await exited).toBe(0);
  const logged = new Set(accessLines(gw).map((l) => l.requestId));
  expect(answered.length).toBeGreaterThan(100);
  const missing = answered.filter((id) => !logged.has(id));
  expect(missing).toEqual([]);
});
