import type { Clock } from '../clock';
import type { StoredKey } from './keyStore';

interface Entry {
  readonly key: StoredKey | null;
  readonly freshUntil: number;
}

export interface KeyCacheOptions {
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly maxEntries: number;
}

export const DEFAULT_KEY_CACHE: KeyCacheOptions = { ttlMs: 60_000, negativeTtlMs: 5_000, maxEntries: 100_000 };

/**
 * In-process cache of key lookups by hash, so that in steady state an allowed request
 * costs one store round trip (the limiter). Changes reach it through `invalidate`
 * (pub/sub and a 1 s version poll); the TTL is the backstop. A stale positive entry
 * outlives its TTL on purpose: while the store is down, keys verified before the
 * outage keep their tier (SPEC §3 step 3).
 */
export class KeyCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly clock: Clock, private readonly options: KeyCacheOptions = DEFAULT_KEY_CACHE) {}

  /** A fresh entry: `undefined` when absent or stale, `null` for a known-bad key. */
  fresh(hash: string): StoredKey | null | undefined {
    const e = this.entries.get(hash);
    if (e === undefined || e.freshUntil < this.clock()) return undefined;
    return e.key;
  }

  /** The last known answer, however old, for when the store cannot be asked; `undefined` if none. */
  stale(hash: string): StoredKey | null | undefined {
    return this.entries.get(hash)?.key;
  }

  put(hash: string, key: StoredKey | null): void {
    if (this.entries.size >= this.options.maxEntries && !this.entries.has(hash)) {
      // Evict the oldest insertion; Map iterates in insertion order.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.delete(hash);
    this.entries.set(hash, { key, freshUntil: this.clock() + (key === null ? this.options.negativeTtlMs : this.options.ttlMs) });
  }

  invalidate(hashes: readonly string[]): void {
    for (const h of hashes) this.entries.delete(h);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
