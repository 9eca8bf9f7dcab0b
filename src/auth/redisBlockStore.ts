import type { Cluster, Redis } from 'ioredis';
import type { Block, BlockPolicy, BlockStore } from './ipBlocks';

/**
 * KEYS[1] the IP's bad-key counter; ARGV[1] limit, ARGV[2] window ms.
 * Returns {count, nowMs}; the counter is reset once it reaches the limit.
 */
const COUNT_INVALID_LUA = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
local t = redis.call('TIME')
return {n, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}
`;

interface BlockScripts {
  tollgateCountInvalid(key: string, limit: number, windowMs: number): Promise<[number, number]>;
}

/*
 * Layout: <prefix>{ip:<ip>}:bad counter per IP; <prefix>{ctl}:blocks sorted set of
 * blocked IPs scored by the epoch ms their block ends.
 */
export class RedisBlockStore implements BlockStore {
  private readonly scripts: BlockScripts;
  private readonly blocksKey: string;

  constructor(private readonly client: Redis | Cluster, private readonly prefix: string) {
    const c = client as (Redis | Cluster) & Partial<BlockScripts>;
    if (!c.tollgateCountInvalid) c.defineCommand('tollgateCountInvalid', { numberOfKeys: 1, lua: COUNT_INVALID_LUA });
    this.scripts = c as unknown as BlockScripts;
    this.blocksKey = `${prefix}{ctl}:blocks`;
  }

  async recordInvalid(ip: string, policy: BlockPolicy): Promise<Block | null> {
    const [count, now] = await this.scripts.tollgateCountInvalid(`${this.prefix}{ip:${ip}}:bad`, policy.invalidKeyLimit, policy.windowMs);
    if (count < policy.invalidKeyLimit) return null;
    const block = { ip, until: now + policy.blockMs };
    await this.client.zadd(this.blocksKey, block.until, ip);
    return block;
  }

  async list(): Promise<Block[]> {
    const t = await this.client.time();
    const now = Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000);
    await this.client.zremrangebyscore(this.blocksKey, '-inf', now);
    const flat = await this.client.zrange(this.blocksKey, 0, -1, 'WITHSCORES');
    const out: Block[] = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ ip: flat[i], until: Number(flat[i + 1]) });
    return out;
  }

  async unblock(ip: string): Promise<boolean> {
    const removed = await this.client.zrem(this.blocksKey, ip);
    await this.client.del(`${this.prefix}{ip:${ip}}:bad`);
    return removed > 0;
  }
}
