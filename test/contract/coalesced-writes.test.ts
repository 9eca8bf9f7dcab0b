import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { COMMANDS_PER_WRITE } from '../../src/limit/coalescedWrites';
import { RedisLimitStore } from '../../src/limit/redisLimitStore';
import { singlePlan, type LimitRequest } from '../support/limitPlans';
import { startRedis, type RedisServer } from '../support/redis';

/*
 * The limiter's commands of one event-loop turn leave in a few socket writes of
 * COMMANDS_PER_WRITE each (CoalescedWrites), and still one EVALSHA per decision with exact counts.
 */

type CountedSocket = Socket & { _write: (...args: unknown[]) => void; _writev: (...args: unknown[]) => void };

/** Counts the socket-level writes (each one write()/writev() system call) of a client. */
function countWrites(client: Redis): { readonly count: number } {
  const stream = client.stream as CountedSocket;
  const counter = { count: 0 };
  for (const name of ['_write', '_writev'] as const) {
    const original = stream[name].bind(stream);
    stream[name] = (...args: unknown[]) => {
      counter.count += 1;
      original(...args);
    };
  }
  return counter;
}

async function evalshaCalls(client: Redis): Promise<number> {
  const info = await client.info('commandstats');
  return Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

describe('CoalescedWrites on a real redis-server', () => {
  let server: RedisServer;
  let client: Redis;
  let admin: Redis;

  beforeAll(async () => {
    server = await startRedis();
    client = new Redis(server.url, { enableAutoPipelining: false });
    admin = new Redis(server.url);
    await Promise.all([client.ping(), admin.ping()]);
  });

  afterAll(async () => {
    client.disconnect();
    admin.disconnect();
    await server.stop();
  });

  it.each(['sliding-window', 'gcra'] as const)('%s: 40 decisions in one turn go out in 40 / COMMANDS_PER_WRITE writes and count exactly', async (algorithm) => {
    const store = new RedisLimitStore(client, `t${randomUUID()}:`);
    const req: LimitRequest = { id: 'k1', algorithm, limit: 25, windowMs: 60_000 };
    await store.peek(singlePlan(req)); // loads the script (EVALSHA, then EVAL on NOSCRIPT) outside the counted turn
    const before = await evalshaCalls(admin);
    const writes = countWrites(client);

    const results = await Promise.all(Array.from({ length: 40 }, () => store.decide(singlePlan(req))));

    expect(results.filter((r) => r.allowed)).toHaveLength(25);
    expect(results.filter((r) => !r.allowed)).toHaveLength(15);
    expect(writes.count).toBe(Math.ceil(40 / COMMANDS_PER_WRITE));
    expect((await evalshaCalls(admin)) - before).toBe(40);
  });

  it('a decision alone in its turn is sent in that turn, not held', async () => {
    const store = new RedisLimitStore(client, `t${randomUUID()}:`);
    const req: LimitRequest = { id: 'k2', algorithm: 'sliding-window', limit: 5, windowMs: 60_000 };
    await store.peek(singlePlan(req));
    const writes = countWrites(client);
    const sequential = [];
    for (let i = 0; i < 7; i++) {
      const before = writes.count;
      const decision = store.decide(singlePlan(req));
      // Out by the end of this turn (setImmediate), not on some later timer.
      await new Promise((resolve) => setImmediate(resolve));
      expect(writes.count).toBe(before + 1);
      sequential.push((await decision).allowed);
    }
    expect(sequential).toEqual([true, true, true, true, true, false, false]);
  });
});
