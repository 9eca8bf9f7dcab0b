import type { Cluster, Redis } from 'ioredis';
import type { HealthRecord } from '../health/healthState';
import type { Control, ControlEvent, ControlSnapshot } from './control';

/*
 * Layout, under one hash tag so the snapshot is one MGET on Redis Cluster:
 *   <prefix>{ctl}:health         JSON HealthRecord
 *   <prefix>{ctl}:keys-version   counter, bumped on every key change
 *   <prefix>{ctl}:blocks-version counter, bumped on every block or unblock
 * Channel <prefix>events carries ControlEvent JSON.
 */
export class RedisControl implements Control {
  private readonly healthKey: string;
  private readonly keysVersionKey: string;
  private readonly blocksVersionKey: string;
  private readonly channel: string;
  private subscriber: Redis | Cluster | null = null;
  /** Changes made here are applied here at once; pub/sub brings them back later, harmlessly. */
  private onEvent: (e: ControlEvent) => void = () => undefined;

  constructor(private readonly client: Redis | Cluster, prefix: string, private readonly onError: (err: Error) => void) {
    this.healthKey = `${prefix}{ctl}:health`;
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

  async setHealth(record: HealthRecord): Promise<void> {
    await this.client.set(this.healthKey, JSON.stringify(record));
    await this.publish({ type: 'health', record });
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
    const [health, keys, blocks] = await this.client.mget(this.healthKey, this.keysVersionKey, this.blocksVersionKey);
    return {
      health: health === null ? null : (JSON.parse(health) as HealthRecord),
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
