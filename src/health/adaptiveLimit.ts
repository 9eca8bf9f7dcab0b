/**
 * CONCURRENCY_LIMIT=auto: the in-flight limit learned from the upstream's latency, updated
 * every 250 ms (a slowed upstream's queue must be bounded within the first second). Taken from Netflix's concurrency-limits (`Gradient2Limit`) and Envoy's
 * adaptive concurrency filter, both of which compute
 *     newLimit = limit × gradient + headroom,   gradient = baseline ÷ measured latency
 * with the headroom √limit so the limit keeps probing upward:
 * - from Gradient2: a `tolerance` (latency may reach tolerance × baseline before the limit
 *   shrinks), the gradient clamped to [0.5, 1], and no growth while the upstream is
 *   app-limited (fewer than half the slots used: a limit that was never tested is not raised
 *   past the initial one, to which a limit lowered by a fault returns once the latency is fine);
 * - ours: one or two slow windows (250 ms each) shrink nothing, three in a row do, so a GC
 *   pause or a noisy neighbour does not refuse requests in a healthy second;
 * - from Envoy: the baseline is a near-minimum latency, not a long average, so a sustained
 *   fault does not raise it (`LatencyBaseline`);
 * - ours: when the latency is over tolerance, the gradient is applied to the concurrency the
 *   upstream actually had in the window, not to a limit far above it, so the limit reaches
 *   the upstream's real capacity within a second of a fault instead of shrinking from an
 *   unused maximum 20 % at a time;
 * - ours: while the lowest priority is in play, the limit never goes below twice what the
 *   higher priorities had in flight at their peak, + √limit. The guard is there to shed the
 *   lowest priority first; without this floor an upstream that is slower but not overloaded
 *   (latency above tolerance × baseline for the whole fault) squeezed the limit until paying
 *   requests were refused too (`npm run overload`: 94 % within-contract goodput, 86 % shed
 *   precision). Floors from the higher priorities' arrival rate × a tolerable latency were
 *   tried and refused paying requests again (97-98 %): the peak is what they really hold.
 *   The rate limits, not the guard, hold the higher priorities to their contracts.
 */
export interface AdaptiveSettings {
  readonly initial: number;
  readonly min: number;
  readonly max: number;
  /** Latency may reach this multiple of the baseline before the limit shrinks. */
  readonly tolerance: number;
}

export interface LatencyWindow {
  readonly latencyMs: number;
  readonly baselineMs: number;
  /** The most requests in flight at once during the window. */
  readonly peakInflight: number;
  /** Upstream responses in the window: a second without enough says nothing. */
  readonly samples: number;
  /**
   * The most requests of the higher priorities in flight at once; null when no request of the
   * lowest priority came.
   */
  readonly highDemand: number | null;
  /** Windows in a row, this one included, whose latency was over tolerance × baseline. */
  readonly slowWindows: number;
}

/** A slow window or two (a GC pause, a noisy neighbour) shrink nothing: three in a row (750 ms) do. */
export const SLOW_WINDOWS_TO_SHRINK = 3;

/** Whether a window's latency is over tolerance × baseline (the caller counts them in a row). */
export function isSlow(latencyMs: number, baselineMs: number, tolerance: number): boolean {
  return baselineMs > 0 && latencyMs > tolerance * baselineMs;
}

/** Pure: the next limit (a whole number within [min, max]). */
export function nextLimit(limit: number, w: LatencyWindow, s: AdaptiveSettings, minSamples: number): number {
  if (w.samples < minSamples || w.baselineMs <= 0 || w.latencyMs <= 0) return limit;
  const gradient = Math.min(1, Math.max(0.5, (s.tolerance * w.baselineMs) / w.latencyMs));
  let next: number;
  if (gradient < 1) {
    next = w.slowWindows >= SLOW_WINDOWS_TO_SHRINK ? Math.min(limit, w.peakInflight) * gradient + Math.sqrt(limit) : limit;
  } else if (w.peakInflight >= limit / 2) {
    next = limit + Math.sqrt(limit); // the slots are used: probe upward
  } else if (limit < s.initial) {
    // After a fault, back to the initial limit even while idle, so that the first burst
    // of a quiet period is not refused.
    next = Math.min(limit + Math.sqrt(limit), s.initial);
  } else {
    next = limit;
  }
  if (w.highDemand !== null) next = Math.max(next, 2 * w.highDemand + Math.sqrt(limit));
  return Math.round(Math.min(s.max, Math.max(s.min, next)));
}
