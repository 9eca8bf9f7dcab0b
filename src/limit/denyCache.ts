import type { Clock } from '../clock';
import { limitResult, type LimitResult } from './store';

interface Denial {
  readonly limit: number;
  readonly algorithm: string;
  /** Local epoch ms before which the store cannot allow this caller again. */
  readonly until: number;
  /** The store's answer, shifted to local time. */
  readonly resetMs: number;
  readonly retryAtMs: number;
}

/**
 * Holds a denial until the earliest moment the store could allow that caller again
 * (GCRA's retry time; for the sliding window, when the weighted previous window has
 * decayed enough). Other instances can only add to the caller's count, never take
 * from it, so a held denial never turns an allowed request into a 429. Cleared when
 * tiers, keys or health change.
 */
export class DenyCache {
  private readonly denials = new Map<string, Denial>();

  constructor(private readonly clock: Clock, private readonly maxEntries = 100_000) {}

  /** A cached denial for this caller at this limit, as a result in local time. */
  get(id: string, limit: number, algorithm: string): LimitResult | null {
    if (this.denials.size === 0) return null;
    const d = this.denials.get(id);
    if (d === undefined) return null;
    const now = this.clock();
    if (now >= d.until || d.limit !== limit || d.algorithm !== algorithm) {
      this.denials.delete(id);
      return null;
    }
    return limitResult(false, 0, d.resetMs, d.retryAtMs, now);
  }

  /**
   * Remembers a store denial; `result` times are on the store's clock. `askedAt` is the
   * local time the store was asked: mapping the store's clock through it errs early,
   * so the cache lets a request through to the store rather than hold it too long.
   */
  put(id: string, limit: number, algorithm: string, result: LimitResult, askedAt: number): void {
    if (this.denials.size >= this.maxEntries) this.sweep();
    if (this.denials.size >= this.maxEntries) return;
    const shift = askedAt - result.nowMs;
    this.denials.set(id, {
      limit, algorithm, until: result.retryAtMs + shift, resetMs: result.resetMs + shift, retryAtMs: result.retryAtMs + shift,
    });
  }

  clear(): void {
    this.denials.clear();
  }

  private sweep(): void {
    const now = this.clock();
    for (const [id, d] of this.denials) if (now >= d.until) this.denials.delete(id);
  }
}
