import type { HealthRecord } from '../health/healthState';

/**
 * Cross-instance notices: what one instance changes, every instance sharing the store
 * applies within 1 s. Pub/sub carries them at once; a 1 s poll of `snapshot()` is the
 * safety net, since pub/sub drops messages while a connection is down.
 */
export type ControlEvent =
  | { readonly type: 'health'; readonly record: HealthRecord }
  | { readonly type: 'keys'; readonly hashes: readonly string[]; readonly version: number }
  | { readonly type: 'blocks'; readonly version: number };

export interface ControlSnapshot {
  readonly health: HealthRecord | null;
  readonly keysVersion: number;
  readonly blocksVersion: number;
}

export interface Control {
  /** Starts delivering events from other instances (and this one) to `onEvent`. */
  start(onEvent: (e: ControlEvent) => void): Promise<void>;
  setHealth(record: HealthRecord): Promise<void>;
  keysChanged(hashes: readonly string[]): Promise<void>;
  blocksChanged(): Promise<void>;
  snapshot(): Promise<ControlSnapshot>;
  close(): Promise<void>;
}

/** Single-process control: events are delivered synchronously to this process alone. */
export class MemoryControl implements Control {
  private health: HealthRecord | null = null;
  private keysVersion = 0;
  private blocksVersion = 0;
  private onEvent: (e: ControlEvent) => void = () => undefined;

  start(onEvent: (e: ControlEvent) => void): Promise<void> {
    this.onEvent = onEvent;
    return Promise.resolve();
  }

  setHealth(record: HealthRecord): Promise<void> {
    this.health = record;
    this.onEvent({ type: 'health', record });
    return Promise.resolve();
  }

  keysChanged(hashes: readonly string[]): Promise<void> {
    this.onEvent({ type: 'keys', hashes, version: ++this.keysVersion });
    return Promise.resolve();
  }

  blocksChanged(): Promise<void> {
    this.onEvent({ type: 'blocks', version: ++this.blocksVersion });
    return Promise.resolve();
  }

  snapshot(): Promise<ControlSnapshot> {
    return Promise.resolve({ health: this.health, keysVersion: this.keysVersion, blocksVersion: this.blocksVersion });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
