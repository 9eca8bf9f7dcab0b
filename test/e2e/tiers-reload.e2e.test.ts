import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest } from '../support/http';
import { waitFor } from '../support/processes';
import { startUpstream, type Upstream } from '../support/upstream';
import { SHIPPED_TIERS, createKey, get } from './fixtures';

/* Tier hot reload (SPEC §2): file change, ConfigMap symlink swap, SIGHUP, admin route. */

let upstream: Upstream;
beforeAll(async () => { upstream = await startUpstream(); });
afterAll(async () => { await upstream?.close(); });

async function limitOf(gw: GatewayProcess, key: string): Promise<string | undefined> {
  return (await get(gw.url, key)).headers['x-ratelimit-limit'] as string | undefined;
}

/** A gateway on a fresh tiers file (the shipped tiers) in its own directory, and a free key (limit 20). */
async function startOnTiersFile(prefix: string): Promise<{ dir: string; file: string; gw: GatewayProcess; key: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const file = path.join(dir, 'tiers.json');
  writeFileSync(file, JSON.stringify(SHIPPED_TIERS));
  const gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, TIERS_FILE: file } });
  try {
    const { key } = await createKey(gw.adminUrl, 'free');
    expect(await limitOf(gw, key)).toBe('20');
    return { dir, file, gw, key };
  } catch (err) {
    await gw.stop();
    throw err;
  }
}

/** One series' value on the admin port's /metrics (undefined when absent). */
async function metric(gw: GatewayProcess, series: string): Promise<number | undefined> {
  const line = (await get(`${gw.adminUrl}/metrics`)).body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Resolves once the key's limit header reads `limit`; fails after `ms`. */
function limitBecomes(gw: GatewayProcess, key: string, limit: string, ms: number): Promise<boolean> {
  return waitFor(`limit ${limit} in force`, async () => (await limitOf(gw, key)) === limit, ms);
}

test('invalid file → 400 with every reason, old limits still enforced; valid file (free burst 5) enforced within 2 s without an admin call', async () => {
  const { file, gw, key } = await startOnTiersFile('tollgate-reload-');
  try {

    writeFileSync(file, JSON.stringify({ windowSeconds: 60, algorithm: 'leaky', tiers: { free: { limit: 10, burst: 5, colour: 'red' }, pro: { limit: -1 } } }));
    const r = await httpRequest(`${gw.adminUrl}/admin/tiers/reload`, { method: 'POST' });
    expect(r.status).toBe(400);
    const body = r.json<{ error: string; reasons: string[] }>();
    expect(body.error).toBe('invalid_request');
    expect(body.reasons.join('\n')).toMatch(/algorithm/);
    expect(body.reasons.join('\n')).toMatch(/burst \(5\) must not be below limit \(10\)/);
    expect(body.reasons.join('\n')).toMatch(/colour/);
    expect(body.reasons.join('\n')).toMatch(/pro.*limit/);
    expect(await limitOf(gw, key)).toBe('20');
    writeFileSync(file, '{ not json');
    expect((await httpRequest(`${gw.adminUrl}/admin/tiers/reload`, { method: 'POST' })).status).toBe(400);
    expect(await limitOf(gw, key)).toBe('20');
    await gw.waitForOutput('"event":"tiers.rejected"');
    // SPEC §12: the rejection is visible to alerting (the file watcher may have counted more).
    expect(await metric(gw, 'tollgate_config_last_reload_ok{file="tiers"}')).toBe(0);
    expect(await metric(gw, 'tollgate_config_reloads_total{file="tiers",result="rejected"}')).toBeGreaterThanOrEqual(2);

    writeFileSync(file, JSON.stringify({ ...SHIPPED_TIERS, tiers: { ...SHIPPED_TIERS.tiers, free: { limit: 5, burst: 5, degraded: 1 } } }));
    await limitBecomes(gw, key, '5', 2000);
    expect((await get(`${gw.adminUrl}/admin/tiers`)).json()).toMatchObject({ tiers: { free: { limit: 5, burst: 5, degraded: 1 } } });
    await gw.waitForOutput('"event":"tiers.reloaded"');
    expect(await metric(gw, 'tollgate_config_last_reload_ok{file="tiers"}')).toBe(1);
    expect(await metric(gw, 'tollgate_config_reloads_total{file="tiers",result="ok"}')).toBeGreaterThanOrEqual(1);
  } finally {
    await gw.stop();
  }
});

test('an editor-style replace (write temp, rename over) in the watched directory is seen without any signal', async () => {
  const { dir, file, gw, key } = await startOnTiersFile('tollgate-rename-');
  try {
    const tmp = path.join(dir, 'tiers.json.tmp');
    writeFileSync(tmp, JSON.stringify({ ...SHIPPED_TIERS, tiers: { ...SHIPPED_TIERS.tiers, free: { limit: 6 } } }));
    renameSync(tmp, file);
    await limitBecomes(gw, key, '6', 2000);
  } finally {
    await gw.stop();
  }
});

test('a Kubernetes ConfigMap symlink swap is seen; a file replaced behind the symlink is picked up on SIGHUP', async () => {
  // ConfigMap layout: tiers.json → ..data/tiers.json, ..data → ..2024_01 (swapped atomically)
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-cm-'));
  const v1 = path.join(dir, '..v1');
  mkdirSync(v1);
  writeFileSync(path.join(v1, 'tiers.json'), JSON.stringify(SHIPPED_TIERS));
  symlinkSync('..v1', path.join(dir, '..data'));
  symlinkSync('..data/tiers.json', path.join(dir, 'tiers.json'));
  const gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, TIERS_FILE: path.join(dir, 'tiers.json') } });
  try {
    const { key } = await createKey(gw.adminUrl, 'free');
    expect(await limitOf(gw, key)).toBe('20');
    const v2 = path.join(dir, '..v2');
    mkdirSync(v2);
    writeFileSync(path.join(v2, 'tiers.json'), JSON.stringify({ ...SHIPPED_TIERS, tiers: { ...SHIPPED_TIERS.tiers, free: { limit: 7 } } }));
    symlinkSync('..v2', path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    await limitBecomes(gw, key, '7', 2000);

    // Editor-style: a new file renamed over the path the symlink points through.
    const tmp = path.join(v2, 'tiers.json.tmp');
    writeFileSync(tmp, JSON.stringify({ ...SHIPPED_TIERS, tiers: { ...SHIPPED_TIERS.tiers, free: { limit: 8 } } }));
    renameSync(tmp, path.join(v2, 'tiers.json'));
    // v2 is not the watched directory; SIGHUP is the operator's way to say "look again".
    process.kill(gw.pid, 'SIGHUP');
    await limitBecomes(gw, key, '8', 2000);
  } finally {
    await gw.stop();
  }
});
