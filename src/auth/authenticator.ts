import { GatewayError } from '../errors';
import type { StoreBreaker } from '../limit/storeBreaker';
import type { KeyCache } from './keyCache';
import type { KeyStore, StoredKey } from './keyStore';

/**
 * Key hash → stored key: the in-process cache, else the store through the breaker,
 * else the last known answer. A key never verified gets `store_unavailable` in every
 * failure mode: authentication never fails open.
 */
export class Authenticator {
  /** Lookups in flight, so a burst on a cold key asks the store once. */
  private readonly pending = new Map<string, Promise<StoredKey | null>>();

  constructor(
    private readonly store: KeyStore,
    private readonly cache: KeyCache,
    private readonly breaker: StoreBreaker | null,
  ) {}

  /** Synchronous fast path: a fresh cached answer, or `undefined`. */
  cached(hash: string): StoredKey | null | undefined {
    return this.cache.fresh(hash);
  }

  resolve(hash: string): Promise<StoredKey | null> {
    const fresh = this.cache.fresh(hash);
    if (fresh !== undefined) return Promise.resolve(fresh);
    let p = this.pending.get(hash);
    if (p === undefined) {
      p = this.lookup(hash).finally(() => this.pending.delete(hash));
      this.pending.set(hash, p);
    }
    return p;
  }

  private async lookup(hash: string): Promise<StoredKey | null> {
    if (this.breaker === null) return this.remember(hash, await this.store.findByHash(hash));
    if (!this.breaker.isOpen) {
      try {
        return this.remember(hash, await this.breaker.call(() => this.store.findByHash(hash)));
      } catch {
        // fall through to the last known answer
      }
    }
    const stale = this.cache.stale(hash);
    if (stale !== undefined) return stale;
    throw new GatewayError('store_unavailable');
  }

  private remember(hash: string, key: StoredKey | null): StoredKey | null {
    this.cache.put(hash, key);
    return key;
  }
}
