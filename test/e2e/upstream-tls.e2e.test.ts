import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeCerts, type Certs } from '../support/certs';
import { startGateway } from '../support/gateway';
import { get } from './fixtures';

/*
 * An https:// UPSTREAM_URL: the gateway speaks TLS to the upstream, verifies its certificate
 * against the CAs Node trusts (a private CA through NODE_EXTRA_CA_CERTS), and keeps the TLS
 * connections alive like plain ones.
 */

const PRO = 'demo_pro_key_789';

let dir: string;
let certs: Certs;
let server: https.Server;
let port: number;
let accepted = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tollgate-upstream-tls-'));
  certs = await makeCerts(dir);
  server = https.createServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key) }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ url: req.url, host: req.headers.host, tier: req.headers['x-tollgate-tier'], encrypted: true });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.on('secureConnection', () => { accepted += 1; });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

test('trusted upstream certificate: requests go through over TLS, on kept-alive connections', async () => {
  const gw = await startGateway({ env: { UPSTREAM_URL: `https://127.0.0.1:${port}/v1`, NODE_EXTRA_CA_CERTS: certs.ca } });
  try {
    const before = accepted;
    for (let i = 0; i < 20; i += 1) {
      const r = await get(`${gw.url}/items?n=${i}`, PRO);
      expect(r.status).toBe(200);
      expect(r.json()).toEqual({ url: `/v1/items?n=${i}`, host: `127.0.0.1:${port}`, tier: 'pro', encrypted: true });
    }
    expect(accepted - before).toBe(1);
  } finally {
    expect(await gw.stop()).toBe(0);
  }
});

test('untrusted upstream certificate: 502 bad_gateway JSON, and the gateway stays up', async () => {
  const gw = await startGateway({ env: { UPSTREAM_URL: `https://127.0.0.1:${port}` } });
  try {
    const r = await get(`${gw.url}/items`, PRO);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual({ error: 'bad_gateway', message: expect.any(String), requestId: expect.any(String) });
    expect((await get(`${gw.adminUrl}/livez`)).status).toBe(200);
  } finally {
    expect(await gw.stop()).toBe(0);
  }
});
