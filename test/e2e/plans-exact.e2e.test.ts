import { startGateway, type GatewayProcess } from '../support/gateway';
import { burst, type HttpResult } from '../support/http';
import { sleep } from '../support/processes';
import { startRedis, type RedisServer } from '../support/redis';
import { startRedisCluster, type RedisClusterHandle } from '../support/redisCluster';
import { startUpstream, type Upstream } from '../support/upstream';
import { EXACT, createKey, get, writeTiers } from './fixtures';

/*
 * Issue 13's targets through two real gateway instances sharing a store.
 * Exact: windows 5/s and 20/min and a quota of 50/day, 50 concurrent clients: exactly the
 * counts each counter allows, both algorithms, single Redis and a 3-master Cluster.
 * Cost: one script call per decision with windows and a quota on; none for a key known refused.
 */

const CLIENTS = 50;
const BURST = 40;

function tiersFor(algorithm: string): unknown {
  return {
    windowSeconds: 60,
    algorithm,
    tiers: {
      // The plan of the target.
      exact: { limit: 20, windows: [{ limit: 5, windowSeconds: 1 }], quota: { limit: 50, period: 'day' } },
      // Its second and its quota, with a main window too wide to bind: the quota's exactness.
      exactq: { limit: 1000, windows: [{ limit: 5, windowSeconds: 1 }], quota: { limit: 50, period: 'day' } },
      big: { limit: 100000, windows: [{ limit: 100000, windowSeconds: 1 }, { limit: 100000, windowSeconds: 3600 }], quota: { limit: 1000000, period: 'month' } },
      tiny: { limit: 1000, windows: [{ limit: 1000, windowSeconds: 1 }], quota: { limit: 3, period: 'day' } },
    },
  };
}

/** Resolves just after the next whole second (epoch-aligned, as the sliding windows are). */
async function startOfSecond(): Promise<void> {
  await sleep(1000 - (Date.now() % 1000) + 15);
}

/** A burst of BURST requests from CLIENTS concurrent clients, alternating between the instances. */
function hit(gws: readonly GatewayProcess[], key: string): Promise<HttpResult[]> {
  return burst(BURST, CLIENTS, (i) => get(gws[i % gws.length].url, key));
}

const allowed = (rs: readonly HttpResult[]): number => rs.filter((r) => r.status === 200).length;

function expectOnly429s(rs: readonly HttpResult[], error: string): void {
  for (const r of rs) if (r.status !== 200) expect({ status: r.status, error: r.json<{ error: string }>().error }).toEqual({ status: 429, error });
}

async function exactTargets(gws: readonly GatewayProcess[], algorithm: string): Promise<void> {
  // The main window (60 s, epoch-aligned) must not roll over during the test.
  if (Date.now() % 60_000 > 35_000) await sleep(60_000 - (Date.now() % 60_000) + 50);
  const { key } = await createKey(gws[0].adminUrl, 'exact');
  const { key: quotaKey } = await createKey(gws[0].adminUrl, 'exactq');

  // 1. A burst of 40 in one second: exactly 5. Refill must not reach into the burst (SPEC §2's
  //    proviso: for gcra a token returns every 200 ms); a burst that took longer than that on
  //    this shared machine is not the claim, so it is measured and retried on a fresh key.
  let first: HttpResult[] = [];
  let firstKey = key;
  for (let attempt = 0; ; attempt++) {
    await startOfSecond();
    const t0 = Date.now();
    first = await hit(gws, firstKey);
    const took = Date.now() - t0;
    if (took < 180 || attempt === 3) {
      expect(took).toBeLessThan(attempt === 3 ? 180 : Infinity);
      break;
    }
    firstKey = (await createKey(gws[0].adminUrl, 'exact')).key;
  }
  expect(allowed(first)).toBe(5);
  expectOnly429s(first, 'rate_limited');
  expect(first.find((r) => r.status === 429)?.json()).toMatchObject({ tier: 'exact', limit: 5 });

  // 2. and 3., at once: bursts each second until the minute window (20) and the quota (50)
  //    refuse a whole burst themselves; the totals are exact whatever each second let through.
  const drain = async (k: string, error: string, limit: number): Promise<{ sum: number; ms: number }> => {
    let sum = k === firstKey ? allowed(first) : 0;
    const t0 = Date.now();
    for (let round = 0; round < 40; round++) {
      await startOfSecond();
      const rs = await hit(gws, k);
      sum += allowed(rs);
      if (allowed(rs) === 0 && rs.every((r) => r.json<{ error: string; limit: number }>().error === error && r.json<{ limit: number }>().limit === limit)) break;
    }
    return { sum, ms: Date.now() - t0 };
  };
  const [minute, day] = await Promise.all([drain(firstKey, 'rate_limited', 20), drain(quotaKey, 'quota_exceeded', 50)]);
  expect({ algorithm, day: day.sum }).toEqual({ algorithm, day: 50 });
  if (algorithm === 'sliding-window') {
    // One epoch-aligned minute, the key's first: exactly its 20.
    expect(minute.sum).toBe(20);
  } else {
    // gcra returns one of the 20 every 3 s (SPEC §2): 20 plus what came back while draining.
    const back = Math.floor((minute.ms + 1000) / 3000);
    expect(minute.sum).toBeGreaterThanOrEqual(20 + back - 1);
    expect(minute.sum).toBeLessThanOrEqual(20 + back + 1);
  }
}

let upstream: Upstream;
beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(async () => {
  await upstream?.close();
});

describe('single Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  test.each(['sliding-window', 'gcra'])('%s: exact counts for 5/s + 20/min + 50/day through two instances', async (algorithm) => {
    const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, KEYS_FILE: '', TIERS_FILE: writeTiers(tiersFor(algorithm)), REDIS_KEY_PREFIX: `${algorithm}:` };
    const gws = await Promise.all([startGateway({ env }), startGateway({ env })]);
    try {
      await exactTargets(gws, algorithm);
    } finally {
      await Promise.all(gws.map((g) => g.stop()));
    }
  }, 120_000);

  test('with two windows and a quota: one script call per decision over 1,000 requests; none for a key known refused', async () => {
    const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, KEYS_FILE: '', TIERS_FILE: writeTiers(tiersFor('sliding-window')), REDIS_KEY_PREFIX: 'cost:' };
    const gw = await startGateway({ env });
    try {
      const { key } = await createKey(gw.adminUrl, 'big');
      await redis.resetStats();
      const rs = await burst(1000, 10, () => get(gw.url, key));
      expect(allowed(rs)).toBe(1000);
      const stats = await redis.commandStats();
      // One EVALSHA per decision (+ the first, which loaded the script with EVAL, and the key lookup).
      expect((stats.evalsha ?? 0) + (stats.eval ?? 0)).toBe(1000 + 1);

      const { key: tiny } = await createKey(gw.adminUrl, 'tiny');
      for (let i = 0; i < 3; i++) expect((await get(gw.url, tiny)).status).toBe(200);
      const refused = await get(gw.url, tiny);
      expect(refused.json()).toMatchObject({ error: 'quota_exceeded' });
      const before = await redis.commandStats();
      for (let i = 0; i < 200; i++) expect((await get(gw.url, tiny)).status).toBe(429);
      const after = await redis.commandStats();
      const perRequest = (s: Record<string, number>) => (s.evalsha ?? 0) + (s.eval ?? 0) + (s.get ?? 0) + (s.hmget ?? 0);
      expect(perRequest(after)).toBe(perRequest(before));
    } finally {
      await gw.stop();
    }
  }, 60_000);
});

describe('3-master Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  test.each(['sliding-window', 'gcra'])('%s: exact counts for 5/s + 20/min + 50/day through two instances, every counter under one hash tag', async (algorithm) => {
    const env = { UPSTREAM_URL: upstream.url, REDIS_CLUSTER_NODES: cluster.nodes, ...EXACT, KEYS_FILE: '', TIERS_FILE: writeTiers(tiersFor(algorithm)), REDIS_KEY_PREFIX: `${algorithm}:` };
    const gws = await Promise.all([startGateway({ env }), startGateway({ env })]);
    try {
      await exactTargets(gws, algorithm);
      // A multi-key script crossing slots would have failed with CROSSSLOT: none did.
      for (const g of gws) expect(g.output()).not.toMatch(/CROSSSLOT/);
    } finally {
      await Promise.all(gws.map((g) => g.stop()));
    }
  }, 120_000);
});
