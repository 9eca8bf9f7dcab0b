import { startGateway } from '../support/gateway';
import { burst, countStatuses, httpRequest } from '../support/http';
import { startRedis, type RedisServer } from '../support/redis';
import { startUpstream, type Upstream } from '../support/upstream';
import { createKey, get, EXACT } from './fixtures';

/* Keys never appear in logs or metrics (SPEC §3 step 3, §5). */

let upstream: Upstream;
let redis: RedisServer;
beforeAll(async () => { [upstream, redis] = await Promise.all([startUpstream(), startRedis()]); });
afterAll(async () => { await Promise.all([upstream?.close(), redis?.stop()]); });

test('after a run with many keys — allowed, limited, invalid, rotated, revoked — no key string is in the logs, /metrics or Redis', async () => {
  const gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, LOG_LEVEL: 'trace', INVALID_KEY_LIMIT: '1000' } });
  const keys: string[] = ['demo_free_key_123', 'demo_pro_key_789', 'demo_enterprise_key_456'];
  try {
    const created = await Promise.all(Array.from({ length: 30 }, (_, i) => createKey(gw.adminUrl, ['free', 'pro', 'enterprise'][i % 3])));
    keys.push(...created.map((k) => k.key));
    const statuses = countStatuses(await burst(30 * 22, 20, (i) => get(`${gw.url}/p/${i}`, created[i % 30].key)));
    expect(statuses[200]).toBeGreaterThan(0);
    expect(statuses[429]).toBeGreaterThan(0);
    const bogus = Array.from({ length: 20 }, (_, i) => `bogus_key_never_issued_${i}`);
    keys.push(...bogus);
    for (const b of bogus) expect((await get(gw.url, b)).status).toBe(401);
    const rotated = await httpRequest(`${gw.adminUrl}/admin/keys/${created[0].id}/rotate`, { method: 'POST' });
    keys.push(rotated.json<{ key: string }>().key);
    expect((await httpRequest(`${gw.adminUrl}/admin/keys/${created[1].id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await get(gw.url, created[1].key)).status).toBe(401);
    await httpRequest(`${gw.adminUrl}/admin/keys`, { method: 'POST', body: JSON.stringify({ tier: 'nope', key: 'leaky_import_key_1', name: 'x' }) });
    keys.push('leaky_import_key_1');

    const metrics = (await get(`${gw.adminUrl}/metrics`)).body;
    const dump = await redis.cli('--scan');
    const values: string[] = [];
    for (const k of dump.split('\n').filter(Boolean)) values.push(await redis.cli('DUMP', k));
    expect(gw.output().length).toBeGreaterThan(1000); // there were logs to look at
    for (const k of keys) {
      expect(gw.output()).not.toContain(k);
      expect(metrics).not.toContain(k);
      expect(dump).not.toContain(k);
      for (const v of values) expect(v).not.toContain(k);
    }
  } finally {
    await gw.stop();
  }
});
