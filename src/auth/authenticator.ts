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
  constructor(
    private readonly store: KeyStore,
    private readonly cache: KeyCache,
    private readonly breaker: StoreBreaker | null,
  ) {}

  /** Synchronous fast path: a fresh cached answer, or `undefined`. */
  cached(hash: string): StoredKey | null | undefined {
    return this.cache.fresh(hash);
  }

  async resolve(hash: string): Promise<StoredKey | null> {
    const fresh = this.cache.fresh(hash);
    if (fresh !== undefined) return fresh;
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
