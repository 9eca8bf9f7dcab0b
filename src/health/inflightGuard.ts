/**
 * The in-flight guard towards the upstream (SPEC §8), one per instance. Requests of the
 * lowest priority in force may hold at most half of the slots; higher priorities share the
 * rest and whatever the lowest leaves free. A request that finds no slot is refused at once
 * (503 `overloaded`), never queued: under overload the lowest priority is shed first, in the
 * seconds before the health state reacts. The idea is Netflix's partitioned limiter
 * (concurrency-limits' `AbstractPartitionedLimiter`, where each partition has a guaranteed
 * share and may borrow unused capacity) reduced to the one partition that matters here.
 */

/** The admission rule, pure: may one more request of this class take a slot? */
export function admits(limit: number, inflight: number, lowestInflight: number, isLowest: boolean): boolean {
  if (inflight >= limit) return false;
  if (!isLowest) return true;
  return lowestInflight < Math.max(1, Math.floor(limit / 2));
}

/** One second of the guard, read by the health signals. */
export interface GuardWindow {
  readonly rejections: number;
  readonly admitted: number;
}

export class InflightGuard {
  private inflight = 0;
  private lowestInflight = 0;
  private rejected = 0;
  private admitted = 0;
  private peak = 0;
  private peakHigh = 0;
  private sawLowest = false;

  /** `limit()` is read on every admission: a fixed number, or the adaptive limit's current value. */
  constructor(private readonly limit: () => number) {}

  /** Takes a slot, or returns false (counted as a rejection). Pair every true with `release`. */
  tryAcquire(isLowest: boolean): boolean {
    if (isLowest) this.sawLowest = true;
    if (!admits(this.limit(), this.inflight, this.lowestInflight, isLowest)) {
      this.rejected += 1;
      return false;
    }
    this.inflight += 1;
    this.admitted += 1;
    if (this.inflight > this.peak) this.peak = this.inflight;
    if (isLowest) this.lowestInflight += 1;
    else if (this.inflight - this.lowestInflight > this.peakHigh) this.peakHigh = this.inflight - this.lowestInflight;
    return true;
  }

  release(isLowest: boolean): void {
    this.inflight -= 1;
    if (isLowest) this.lowestInflight -= 1;
  }

  get inFlight(): number {
    return this.inflight;
  }

  /** Refusals and admissions since the last call. */
  take(): GuardWindow {
    const w = { rejections: this.rejected, admitted: this.admitted };
    this.rejected = 0;
    this.admitted = 0;
    return w;
  }

  /**
   * Since the last call (the adaptive limit reads it): the most requests in flight at once,
   * the most of the higher priorities, and whether any request of the lowest priority came.
   */
  takePeak(): { peak: number; peakHigh: number; sawLowest: boolean } {
    const w = { peak: this.peak, peakHigh: this.peakHigh, sawLowest: this.sawLowest };
    this.peak = this.inflight;
    this.peakHigh = this.inflight - this.lowestInflight;
    this.sawLowest = this.lowestInflight > 0;
    return w;
  }
}
