import type { Clock } from '../clock';
import { planResult, type PlanResult, type PlanTemplate } from './plan';

interface Denial {
  readonly template: PlanTemplate;
  readonly cost: number;
  /** Local epoch ms before which the store cannot allow this request again. */
  readonly until: number;
  readonly binding: number;
  /** The store's per-counter answer, reset times shifted to local time. */
  readonly counters: readonly number[];
}

/**
 * Holds a denial until the plan's retry time: the soonest moment every counter could
 * allow that request again (GCRA's retry time; for the sliding window, when the weighted
 * previous window has decayed enough; a quota's period end). Other instances can only add
 * to the subject's counts, never take from them, so a held denial never turns an allowed
 * request into a 429. Held per subject (key or identity) for one template and cost: any
 * other plan asks the store. Cleared when tiers, keys or health change.
 */
export class DenyCache {
  private readonly denials = new Map<string, Denial>();

  constructor(private readonly clock: Clock, private readonly maxEntries = 100_000) {}

  /** A cached denial for this subject and plan, as a result in local time. */
  get(subject: string, template: PlanTemplate, cost: number): PlanResult | null {
    if (this.denials.size === 0) return null;
    const d = this.denials.get(subject);
    if (d === undefined) return null;
    const now = this.clock();
    if (now >= d.until || d.template !== template || d.cost !== cost) {
      this.denials.delete(subject);
      return null;
    }
    return planResult(false, d.until, now, d.binding, d.counters);
  }

  /**
   * Remembers a store denial; `result` times are on the store's clock. `askedAt` is the
   * local time the store was asked: mapping the store's clock through it errs early,
   * so the cache lets a request through to the store rather than hold it too long.
   */
  put(subject: string, template: PlanTemplate, cost: number, result: PlanResult, askedAt: number): void {
    if (this.denials.size >= this.maxEntries) this.sweep();
    if (this.denials.size >= this.maxEntries) return;
    const shift = askedAt - result.nowMs;
    const counters = result.counters.map((v, i) => (i % 2 === 1 ? v + shift : v));
    this.denials.set(subject, { template, cost, until: result.retryAtMs + shift, binding: result.binding, counters });
  }

  clear(): void {
    this.denials.clear();
  }

  private sweep(): void {
    const now = this.clock();
    for (const [id, d] of this.denials) if (now >= d.until) this.denials.delete(id);
  }
}
