import { startGateway, type GatewayProcess } from '../support/gateway';
import { burst, countStatuses } from '../support/http';
import { startRedis, type RedisServer } from '../support/redis';
import { startUpstream, type Upstream } from '../support/upstream';
import { SHIPPED_TIERS, createKey, get, writeTiers, EXACT } from './fixtures';

/*
 * What each request costs in Redis (issue 6): one round trip per allowed request in
 * steady state; none for a key already over its limit until the store could allow it.
 * Counted with INFO commandstats on the test's own Redis. Scripts count as one command
 * (evalsha, or eval the first time); the commands a script runs inside Redis are not
 * round trips and are left out.
 */

const LIMITER_AND_LOOKUPS = ['evalsha', 'eval'];
/** Commands the gateway issues on its own timers (the 1 s sync poll), not per request. */
const BACKGROUND = ['mget', 'ping', 'info', 'client|setname', 'subscribe', 'select', 'client|info', 'cluster|slots'];
const INSIDE_SCRIPTS = ['time', 'hmget', 'hset', 'hincrby', 'pexpire', 'pttl', 'get', 'set'];

let upstream: Upstream;
let redis: RedisServer;

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startUpstream(), startRedis()]);
});
afterAll(async () => {
  await Promise.all([upstream?.close(), redis?.stop()]);
});

function roundTrips(stats: Record<string, number>): { scripts: number; other: Record<string, number> } {
  let scripts = 0;
  const other: Record<string, number> = {};
  for (const [cmd, calls] of Object.entries(stats)) {
    if (LIMITER_AND_LOOKUPS.includes(cmd)) scripts += calls;
    else if (!BACKGROUND.includes(cmd) && !INSIDE_SCRIPTS.includes(cmd) && !cmd.startsWith('config')) other[cmd] = calls;
  }
  return { scripts, other };
}

/** Every command count except the gateway's own timers: what requests cause, scripts and all. */
function requestCaused(stats: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(stats).filter(([cmd]) => !BACKGROUND.includes(cmd) && !cmd.startsWith('config')));
}

describe('one gateway', () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    const tiersFile = writeTiers({ windowSeconds: 2, tiers: { ...SHIPPED_TIERS.tiers, big: { limit: 100000 }, tiny: { limit: 5 } } });
    gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, TIERS_FILE: tiersFile } });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  test('1,000 allowed requests make exactly 1,000 limiter calls and one key lookup', async () => {
    const { key } = await createKey(gw.adminUrl, 'big');
    await redis.resetStats();
    const results = await burst(1000, 10, () => get(gw.url, key));
    expect(countStatuses(results)).toEqual({ 200: 1000 });
    const { scripts, other } = roundTrips(await redis.commandStats());
    expect(scripts).toBe(1000 + 1);
    expect(other).toEqual({});
  });

  test('a key over its limit makes zero Redis commands until the store could allow it again', async () => {
    const { key } = await createKey(gw.adminUrl, 'tiny');
    await get(gw.url, key); // warm the key cache
    await redis.resetStats();
    const first = [];
    for (let i = 0; i < 4; i++) first.push(await get(gw.url, key));
    const denied = await get(gw.url, key); // the store says no: one call, then cached
    expect(first.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(denied.status).toBe(429);
    const statsAfterDenial = await redis.commandStats();
    const afterDenial = roundTrips(statsAfterDenial).scripts;
    expect(afterDenial).toBe(5);
    const retryAfterS = Number(denied.headers['retry-after']);
    expect(retryAfterS).toBeGreaterThanOrEqual(1);
    const until = Date.now() + 200; // well inside the hold
    let held = 0;
    while (Date.now() < until) {
      const r = await get(gw.url, key);
      expect(r.status).toBe(429);
      expect(r.headers['retry-after']).toMatch(/^\d+$/);
      held += 1;
    }
    expect(held).toBeGreaterThan(5);
    // Not a single command of any kind while the denial is held.
    expect(requestCaused(await redis.commandStats())).toEqual(requestCaused(statsAfterDenial));
    // After Retry-After the request reaches the store again and is allowed.
    await new Promise((r) => setTimeout(r, retryAfterS * 1000 + 50));
    expect((await get(gw.url, key)).status).toBe(200);
    expect(roundTrips(await redis.commandStats()).scripts).toBe(afterDenial + 1);
  });
});

test('the deny cache never turns an allowed request into a 429: two instances, exact totals over several refills', async () => {
  // GCRA, 10 per 2 s: a token every 200 ms. Two instances hammer one key for ~1.2 s; every
  // token that comes back must be handed out by one of them, so the total allowed is
  // exactly what the bucket allows: 10 + floor(elapsed / 200 ms) (± the one in flight).
  const tiersFile = writeTiers({ windowSeconds: 2, algorithm: 'gcra', tiers: { ...SHIPPED_TIERS.tiers, tick: { limit: 10 } } });
  const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, TIERS_FILE: tiersFile, REDIS_KEY_PREFIX: 'deny:' };
  const [a, b] = await Promise.all([startGateway({ env }), startGateway({ env })]);
  try {
    const { key } = await createKey(a.adminUrl, 'tick');
    const started = Date.now();
    let allowed = 0;
    let requests = 0;
    const worker = async (url: string) => {
      while (Date.now() - started < 1200) {
        const r = await get(url, key);
        requests += 1;
        if (r.status === 200) allowed += 1;
        else expect(r.status).toBe(429);
      }
    };
    await Promise.all([worker(a.url), worker(b.url), worker(a.url), worker(b.url)]);
    const elapsed = Date.now() - started;
    const refills = Math.floor(elapsed / 200);
    expect(requests).toBeGreaterThan(50);
    // Never more than the bucket allows; and no token lost to a stale denial.
    expect(allowed).toBeLessThanOrEqual(10 + refills + 1);
    expect(allowed).toBeGreaterThanOrEqual(10 + refills - 1);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
