import type { Cluster, Redis } from 'ioredis';
import type { AutomaticRecord, HealthOverride } from '../health/healthState';
import type { Control, ControlEvent, ControlSnapshot } from './control';

/**
 * Writes the automatic state only for the lease holder at an epoch no older than the stored one.
 * KEYS[1] automatic record  KEYS[2] its epoch  KEYS[3] leader key
 * ARGV[1] record JSON  ARGV[2] epoch  ARGV[3] decider id
 */
const SET_AUTOMATIC_LUA = `
local leader = redis.call('GET', KEYS[3])
if leader ~= ARGV[3] .. ' ' .. ARGV[2] then return 0 end
local stored = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) < stored then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1
`;

interface ControlCommands {
  tollgateSetAutomatic(record: string, epochKey: string, leaderKey: string, json: string, epoch: number, id: string): Promise<number>;
}

/*
 * Layout, under one hash tag so the snapshot is one MGET on Redis Cluster:
 *   <prefix>{ctl}:health         JSON HealthOverride (an older {status, since} reads as a pin without end)
 *   <prefix>{ctl}:health-auto    JSON AutomaticRecord, and :health-auto-epoch its epoch
 *   <prefix>{ctl}:health-leader  "<id> <epoch>" of the decider (see redisHealthFleet.ts)
 *   <prefix>{ctl}:keys-version   counter, bumped on every key change
 *   <prefix>{ctl}:blocks-version counter, bumped on every block or unblock
 * Channel <prefix>events carries ControlEvent JSON.
 */
export class RedisControl implements Control {
  private readonly healthKey: string;
  private readonly autoKey: string;
  private readonly autoEpochKey: string;
  private readonly leaderKey: string;
  private readonly commands: ControlCommands;
  private readonly keysVersionKey: string;
  private readonly blocksVersionKey: string;
  private readonly channel: string;
  private subscriber: Redis | Cluster | null = null;
  /** Changes made here are applied here at once; pub/sub brings them back later, harmlessly. */
  private onEvent: (e: ControlEvent) => void = () => undefined;

  constructor(private readonly client: Redis | Cluster, prefix: string, private readonly onError: (err: Error) => void) {
    this.healthKey = `${prefix}{ctl}:health`;
    this.autoKey = `${prefix}{ctl}:health-auto`;
    this.autoEpochKey = `${prefix}{ctl}:health-auto-epoch`;
    this.leaderKey = `${prefix}{ctl}:health-leader`;
    const c = client as (Redis | Cluster) & Partial<ControlCommands>;
    if (!c.tollgateSetAutomatic) c.defineCommand('tollgateSetAutomatic', { numberOfKeys: 3, lua: SET_AUTOMATIC_LUA });
    this.commands = c as unknown as ControlCommands;
    this.keysVersionKey = `${prefix}{ctl}:keys-version`;
    this.blocksVersionKey = `${prefix}{ctl}:blocks-version`;
    this.channel = `${prefix}events`;
  }

  async start(onEvent: (e: ControlEvent) => void): Promise<void> {
    this.onEvent = onEvent;
    // A subscribed connection can issue nothing else, so it is a second connection. It
    // queues while connecting (the main client does not), or the first SUBSCRIBE would fail.
    const sub = this.client.isCluster
      ? (this.client as Cluster).duplicate(undefined, { enableOfflineQueue: true })
      : (this.client as Redis).duplicate({ enableOfflineQueue: true });
    this.subscriber = sub;
    sub.on('error', (err: Error) => this.onError(err));
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        onEvent(JSON.parse(message) as ControlEvent);
      } catch (err) {
        this.onError(err as Error);
      }
    });
    // Subscribing must not hold up startup when Redis is down; ioredis resubscribes on reconnect.
    sub.subscribe(this.channel).catch((err: Error) => this.onError(err));
  }

  async setOverride(override: HealthOverride | null): Promise<void> {
    if (override === null) await this.client.del(this.healthKey);
    else await this.client.set(this.healthKey, JSON.stringify(override));
    await this.publish({ type: 'health', override });
  }

  async setAutomatic(record: AutomaticRecord, deciderId: string): Promise<boolean> {
    const ok = await this.commands.tollgateSetAutomatic(this.autoKey, this.autoEpochKey, this.leaderKey, JSON.stringify(record), record.epoch, deciderId);
    if (ok !== 1) return false;
    await this.publish({ type: 'health-auto', record });
    return true;
  }

  async keysChanged(hashes: readonly string[]): Promise<void> {
    const version = await this.client.incr(this.keysVersionKey);
    this.onEvent({ type: 'keys', hashes, version });
    await this.publish({ type: 'keys', hashes, version });
  }

  async blocksChanged(): Promise<void> {
    const version = await this.client.incr(this.blocksVersionKey);
    this.onEvent({ type: 'blocks', version });
    await this.publish({ type: 'blocks', version });
  }

  async snapshot(): Promise<ControlSnapshot> {
    const [health, auto, keys, blocks] = await this.client.mget(this.healthKey, this.autoKey, this.keysVersionKey, this.blocksVersionKey);
    return {
      override: health === null ? null : asOverride(JSON.parse(health) as Partial<HealthOverride>),
      automatic: auto === null ? null : (JSON.parse(auto) as AutomaticRecord),
      keysVersion: Number(keys ?? 0),
      blocksVersion: Number(blocks ?? 0),
    };
  }

  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = null;
    if (sub) sub.disconnect();
  }

  private async publish(e: ControlEvent): Promise<void> {
    await this.client.publish(this.channel, JSON.stringify(e));
  }
}

/** Reads records written before overrides had an end, a reason and an author. */
function asOverride(o: Partial<HealthOverride>): HealthOverride {
  return { status: o.status ?? 'NORMAL', since: o.since ?? new Date(0).toISOString(), until: o.until ?? null, reason: o.reason ?? null, by: o.by ?? 'unknown' };
}
