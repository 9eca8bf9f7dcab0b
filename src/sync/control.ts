import type { AutomaticRecord, HealthOverride } from '../health/healthState';

/**
 * Cross-instance notices: what one instance changes, every instance sharing the store
 * applies within 1 s. Pub/sub carries them at once; a 1 s poll of `snapshot()` is the
 * safety net, since pub/sub drops messages while a connection is down.
 */
export type ControlEvent =
  | { readonly type: 'health'; readonly override: HealthOverride | null }
  | { readonly type: 'health-auto'; readonly record: AutomaticRecord }
  | { readonly type: 'keys'; readonly hashes: readonly string[]; readonly version: number }
  | { readonly type: 'blocks'; readonly version: number };

export interface ControlSnapshot {
  readonly override: HealthOverride | null;
  readonly automatic: AutomaticRecord | null;
  readonly keysVersion: number;
  readonly blocksVersion: number;
}

export interface Control {
  /** Starts delivering events from other instances (and this one) to `onEvent`. */
  start(onEvent: (e: ControlEvent) => void): Promise<void>;
  /** Pins the health state (null removes the pin). */
  setOverride(override: HealthOverride | null): Promise<void>;
  /**
   * Stores the fleet's automatic state, unless a decider with a newer lease epoch, or another
   * holder of the lease, has taken over; false then.
   */
  setAutomatic(record: AutomaticRecord, deciderId: string): Promise<boolean>;
  keysChanged(hashes: readonly string[]): Promise<void>;
  blocksChanged(): Promise<void>;
  snapshot(): Promise<ControlSnapshot>;
  close(): Promise<void>;
}

/** Single-process control: events are delivered synchronously to this process alone. */
export class MemoryControl implements Control {
  private override: HealthOverride | null = null;
  private automatic: AutomaticRecord | null = null;
  private keysVersion = 0;
  private blocksVersion = 0;
  private onEvent: (e: ControlEvent) => void = () => undefined;

  start(onEvent: (e: ControlEvent) => void): Promise<void> {
    this.onEvent = onEvent;
    return Promise.resolve();
  }

  setOverride(override: HealthOverride | null): Promise<void> {
    this.override = override;
    this.onEvent({ type: 'health', override });
    return Promise.resolve();
  }

  setAutomatic(record: AutomaticRecord): Promise<boolean> {
    this.automatic = record;
    this.onEvent({ type: 'health-auto', record });
    return Promise.resolve(true);
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
    return Promise.resolve({ override: this.override, automatic: this.automatic, keysVersion: this.keysVersion, blocksVersion: this.blocksVersion });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
