import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeCerts, type Certs } from '../support/certs';
import { REPO_ROOT, startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest } from '../support/http';
import { runToExit, waitFor } from '../support/processes';
import { h2Connect, type H2Client } from '../support/tlsClient';
import { startUpstream, type Upstream } from '../support/upstream';
import { createKey } from './fixtures';

/*
 * h2 abuse (SPEC §11, CVE-2023-44487 "rapid reset"): a client that opens streams and
 * cancels them at once, in a loop, makes the server start work nobody waits for. The
 * gateway must neither grow its memory without bound nor starve other clients.
 */

const RESETS = 10_000;
const ABUSER_KEY = 'demo_enterprise_key_456';

let dir: string;
let certs: Certs;
let upstream: Upstream;
let gw: GatewayProcess;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tollgate-h2-abuse-'));
  certs = await makeCerts(dir);
  upstream = await startUpstream();
  gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, TLS_CERT_FILE: certs.cert, TLS_KEY_FILE: certs.key, LOG_LEVEL: 'warn', ACCESS_LOG: 'false', CONCURRENCY_LIMIT: '1000' } });
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

interface AbuseReport {
  resets: number;
  sessions: number;
  goaways: number;
  refused: number;
  ms: number;
}

/** scripts/h2-rapid-reset.js in its own process (as an attacker would be: not sharing our event loop). */
async function rapidReset(origin: string, total: number): Promise<AbuseReport> {
  const r = await runToExit('h2-rapid-reset', process.execPath, [
    path.join(REPO_ROOT, 'scripts', 'h2-rapid-reset.js'),
    '--url', origin, '--ca', certs.ca, '--resets', String(total), '--path', '/slow?ms=300', '--key', ABUSER_KEY, '--max-seconds', '60',
  ], { timeoutMs: 90_000 });
  if (r.code !== 0) throw new Error(`h2-rapid-reset exited with ${String(r.code)}: ${r.stderr}`);
  return JSON.parse(r.stdout) as AbuseReport;
}

test(`a client opening and resetting ${RESETS} streams: RSS stays bounded and a concurrent client is served throughout`, async () => {
  const origin = `https://127.0.0.1:${gw.port}`;
  const { key } = await createKey(gw.adminUrl, 'enterprise');
  const normal: H2Client = await h2Connect(origin, [certs.ca]);
  try {
    // Warm up so the baseline includes the JIT and TLS state of an active gateway.
    for (let i = 0; i < 20; i++) expect((await normal.request('/items', { headers: { 'x-api-key': key } })).status).toBe(200);
    const baseline = rssMb(gw.pid);

    let abusing = true;
    let peak = baseline;
    const latencies: number[] = [];
    const statuses: number[] = [];
    const served = (async () => {
      while (abusing) {
        const t0 = Date.now();
        const r = await normal.request('/items', { headers: { 'x-api-key': key }, timeoutMs: 10_000 });
        latencies.push(Date.now() - t0);
        statuses.push(r.status);
        peak = Math.max(peak, rssMb(gw.pid));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const report = await rapidReset(origin, RESETS);
    abusing = false;
    await served;
    const after = rssMb(gw.pid);
    console.log(`rapid reset: ${JSON.stringify(report)}; RSS baseline ${baseline.toFixed(1)} MB, peak ${peak.toFixed(1)} MB, after ${after.toFixed(1)} MB; `
      + `normal client: ${statuses.length} requests, max latency ${Math.max(...latencies)} ms`);

    expect(report.resets).toBe(RESETS);
    expect(statuses.length).toBeGreaterThan(0);
    expect(new Set(statuses)).toEqual(new Set([200]));
    // Generous: the normal client is never starved for seconds.
    expect(Math.max(...latencies)).toBeLessThan(3000);
    // The reset guard ended the abusing session(s), each logged once with the peer's address.
    // (The client counts the streams it wrote; those written after the server closed the
    // connection were never read, which is the point.)
    const floods = gw.output().split('\n').filter((l) => l.includes('(rapid reset)'));
    expect(floods.length).toBeGreaterThanOrEqual(1);
    expect(floods.length).toBeLessThanOrEqual(report.sessions);
    expect(floods[0]).toContain('"ip":"127.0.0.1"');
    expect(peak - baseline).toBeLessThan(150);
    // Nothing held for the reset streams once the abuse ends (their upstream requests were cancelled).
    expect(after - baseline).toBeLessThan(100);
    // Every reset stream gave its in-flight slot back (the guard counts requests towards the upstream).
    await waitFor('no request left in flight', async () => /^tollgate_upstream_inflight 0$/m.test((await httpRequest(`${gw.adminUrl}/metrics`)).body), 5000);
    // The gateway is still fine for a new client.
    const fresh = await h2Connect(origin, [certs.ca]);
    expect((await fresh.request('/items', { headers: { 'x-api-key': key } })).status).toBe(200);
    await fresh.close();
  } finally {
    await normal.close();
  }
}, 120_000);
