import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeCerts, type Certs } from '../support/certs';
import { startGateway } from '../support/gateway';
import { httpRequest } from '../support/http';
import { waitFor } from '../support/processes';
import { h2Connect, tlsAgent } from '../support/tlsClient';
import { startUpstream, type Upstream } from '../support/upstream';

/*
 * SPEC §6 over TLS: on SIGTERM in-flight requests finish, and neither an idle kept-alive
 * HTTPS/1.1 connection nor an open h2 session (told GOAWAY) holds the shutdown open.
 */

const KEY = 'demo_enterprise_key_456';

let dir: string;
let certs: Certs;
let upstream: Upstream;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tollgate-tls-drain-'));
  certs = await makeCerts(dir);
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('SIGTERM: the h2 session gets GOAWAY, its in-flight request and an HTTPS/1.1 one finish, idle connections do not hold the exit (well within the drain time)', async () => {
  const gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, TLS_CERT_FILE: certs.cert, TLS_KEY_FILE: certs.key, SHUTDOWN_TIMEOUT_MS: '10000' } });
  const origin = `https://127.0.0.1:${gw.port}`;
  const agent = tlsAgent([certs.ca], { ALPNProtocols: ['http/1.1'] });
  const h2 = await h2Connect(origin, [certs.ca]);
  try {
    // An idle kept-alive HTTPS/1.1 connection and an idle h2 stream history.
    expect((await httpRequest(`${origin}/items`, { headers: { 'x-api-key': KEY }, agent })).status).toBe(200);
    expect((await h2.request('/items', { headers: { 'x-api-key': KEY } })).status).toBe(200);
    let goaway = false;
    h2.session.on('goaway', () => { goaway = true; });

    const slowH2 = h2.request('/slow?ms=1000&via=h2', { headers: { 'x-api-key': KEY } });
    const slowH1 = httpRequest(`${origin}/slow?ms=1000&via=h1`, { headers: { 'x-api-key': KEY }, agent });
    await waitFor('both slow requests at the upstream', async () => ['h2', 'h1'].every((v) => upstream.received.some((r) => r.url === `/slow?ms=1000&via=${v}`)), 5000, 10);
    const t0 = Date.now();
    process.kill(gw.pid, 'SIGTERM');
    const [a, b] = await Promise.all([slowH2, slowH1]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(b.headers.connection).toBe('close');
    const code = await gw.exited.then((e) => e.code);
    expect(code).toBe(0);
    expect(goaway).toBe(true);
    // Not held open until SHUTDOWN_TIMEOUT_MS by the h2 session or the kept-alive socket.
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(gw.output()).not.toContain('drain time over');
  } finally {
    agent.destroy();
    await h2.close();
    await gw.stop();
  }
});
