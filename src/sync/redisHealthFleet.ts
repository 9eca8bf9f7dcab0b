import type { Cluster, Redis } from 'ioredis';
import type { SignalSample } from '../health/signals';
import type { HealthFleet } from './healthFleet';

/**
 * Publishes this instance's sample with Redis's time and answers every sample younger than
 * `maxAgeMs`, dropping older ones (instances that went away).
 * KEYS[1] hash id → JSON {at, sample}       ARGV[1] id  ARGV[2] sample JSON  ARGV[3] maxAgeMs
 */
const EXCHANGE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], now .. ' ' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 4)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local v = all[i + 1]
  local sp = string.find(v, ' ')
  local at = tonumber(string.sub(v, 1, sp - 1))
  if now - at > tonumber(ARGV[3]) then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = string.sub(v, sp + 1)
  end
end
return out
`;

/**
 * Takes the lease if free (a new epoch), renews it if ours; nil when another holds it.
 * KEYS[1] leader key  KEYS[2] epoch counter   ARGV[1] id  ARGV[2] lease ms
 */
const LEAD_LUA = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local e = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. e, 'PX', ARGV[2])
  return e
end
local v = redis.call('GET', KEYS[1])
local sp = string.find(v, ' ')
if sp and string.sub(v, 1, sp - 1) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(string.sub(v, sp + 1))
end
return false
`;

/** KEYS[1] leader key  ARGV[1] id */
const RESIGN_LUA = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then redis.call('DEL', KEYS[1]) end
return 1
`;

interface FleetCommands {
  tollgateHealthExchange(key: string, id: string, sample: string, maxAgeMs: number): Promise<string[]>;
  tollgateHealthLead(leader: string, epoch: string, id: string, leaseMs: number): Promise<number | null>;
  tollgateHealthResign(leader: string, id: string): Promise<number>;
}

export const LEASE_MS = 3000;
const SAMPLE_MAX_AGE_MS = 2500;

export class RedisHealthFleet implements HealthFleet {
  private readonly commands: FleetCommands;
  private readonly signalsKey: string;
  private readonly leaderKey: string;
  private readonly epochKey: string;

  constructor(client: Redis | Cluster, prefix: string, readonly id: string) {
    const c = client as (Redis | Cluster) & Partial<FleetCommands>;
    if (!c.tollgateHealthExchange) c.defineCommand('tollgateHealthExchange', { numberOfKeys: 1, lua: EXCHANGE_LUA });
    if (!c.tollgateHealthLead) c.defineCommand('tollgateHealthLead', { numberOfKeys: 2, lua: LEAD_LUA });
    if (!c.tollgateHealthResign) c.defineCommand('tollgateHealthResign', { numberOfKeys: 1, lua: RESIGN_LUA });
    this.commands = c as unknown as FleetCommands;
    // One hash tag with the other control keys: one slot on Redis Cluster.
    this.signalsKey = `${prefix}{ctl}:health-signals`;
    this.leaderKey = `${prefix}{ctl}:health-leader`;
    this.epochKey = `${prefix}{ctl}:health-epoch`;
  }

  async exchange(sample: SignalSample): Promise<readonly SignalSample[]> {
    const all = await this.commands.tollgateHealthExchange(this.signalsKey, this.id, JSON.stringify(sample), SAMPLE_MAX_AGE_MS);
    return all.map((s) => JSON.parse(s) as SignalSample);
  }

  async lead(): Promise<number | null> {
    const e = await this.commands.tollgateHealthLead(this.leaderKey, this.epochKey, this.id, LEASE_MS);
    return e === null ? null : Number(e);
  }

  async resign(): Promise<void> {
    await this.commands.tollgateHealthResign(this.leaderKey, this.id);
  }
}
