import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { burst, countStatuses, httpRequest } from '../support/http';
import { waitFor } from '../support/processes';
import { startUpstream, type Upstream } from '../support/upstream';
import { HOUR_TIERS, createKey, get, writeTiers } from './fixtures';

/* Shadow mode (SPEC §10): every decision computed and counted, would-be refusals proxied. */

let upstream: Upstream;
beforeAll(async () => { upstream = await startUpstream(); });
afterAll(async () => { await upstream?.close(); });

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

async function shadowRefusals(gw: GatewayProcess, tier: string): Promise<number> {
  return metricValue((await get(`${gw.adminUrl}/metrics`)).body, `tollgate_shadow_refusals_total{tier="${tier}",policy="rate"}`);
}

test('LIMIT_MODE=shadow: a key far over its limit gets only 200s, the would-be refusals without rate-limit headers, each counted and logged with the key id; auth is never in shadow', async () => {
  const gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, TIERS_FILE: writeTiers(HOUR_TIERS), KEYS_FILE: '', LIMIT_MODE: 'shadow' } });
  try {
    const { id, key } = await createKey(gw.adminUrl, 'free');
    const results = await burst(50, 1, () => get(`${gw.url}/items`, key));
    expect(countStatuses(results)).toEqual({ 200: 50 });
    // The first 20 are allowed and say so; the 30 over the limit carry no rate-limit headers.
    expect(results[19].headers['x-ratelimit-remaining']).toBe('0');
    for (const r of results.slice(20)) expect(r.headers['x-ratelimit-limit']).toBeUndefined();
    expect(await shadowRefusals(gw, 'free')).toBe(30);
    await gw.waitForOutput(new RegExp(`"keyId":"${id}"[^\\n]*shadow mode`));
    expect(gw.output()).not.toContain(key);
    // Refusals counted nowhere: the key's counter still shows exactly its 20 allowed.
    expect((await get(`${gw.adminUrl}/admin/keys/${id}/usage`)).json<{ remaining: number }>().remaining).toBe(0);
    // Authentication is not in shadow.
    expect((await get(`${gw.url}/items`)).status).toBe(401);
    expect((await get(`${gw.url}/items`, 'not_a_real_key_123')).status).toBe(401);
  } finally {
    await gw.stop();
  }
});

test('"mode":"shadow" on a route: only its would-be refusals pass; enforced again after a reload drops the mode', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-shadow-'));
  const routesFile = path.join(dir, 'routes.json');
  const shadowRoutes = { routes: [{ name: 'reports', match: { path: '/reports*' }, mode: 'shadow' }] };
  writeFileSync(routesFile, JSON.stringify(shadowRoutes));
  const gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, TIERS_FILE: writeTiers(HOUR_TIERS), KEYS_FILE: '', ROUTES_FILE: routesFile } });
  try {
    const { key } = await createKey(gw.adminUrl, 'free');
    const results = await burst(30, 1, () => get(`${gw.url}/reports/daily`, key));
    expect(countStatuses(results)).toEqual({ 200: 30 });
    expect(await shadowRefusals(gw, 'free')).toBe(10);
    // Outside the route the same key is enforced.
    expect((await get(`${gw.url}/other`, key)).status).toBe(429);

    writeFileSync(routesFile, JSON.stringify({ routes: [{ name: 'reports', match: { path: '/reports*' } }] }));
    expect((await httpRequest(`${gw.adminUrl}/admin/routes/reload`, { method: 'POST' })).status).toBe(200);
    await waitFor('enforce in force', async () => (await get(`${gw.url}/reports/daily`, key)).status === 429, 3000);
    expect(await shadowRefusals(gw, 'free')).toBe(10);
  } finally {
    await gw.stop();
  }
});
