/**
 * CONCURRENCY_LIMIT=auto: the in-flight limit learned from the upstream's latency, updated
 * every 250 ms (a slowed upstream's queue must be bounded within the first second). Taken from Netflix's concurrency-limits (`Gradient2Limit`) and Envoy's
 * adaptive concurrency filter, both of which compute
 *     newLimit = limit × gradient + headroom,   gradient = baseline ÷ measured latency
 * with the headroom √limit so the limit keeps probing upward:
 * - from Gradient2: a `tolerance` (latency may reach tolerance × baseline before the limit
 *   shrinks), the gradient clamped to [0.5, 1], and no growth while the upstream is
 *   app-limited (fewer than half the slots used: a limit that was never tested is not raised);
 * - from Envoy: the baseline is a near-minimum latency, not a long average, so a sustained
 *   fault does not raise it (`LatencyBaseline`);
 * - ours: when the latency is over tolerance, the gradient is applied to the concurrency the
 *   upstream actually had in the window, not to a limit far above it, so the limit reaches
 *   the upstream's real capacity within a second of a fault instead of shrinking from an
 *   unused maximum 20 % at a time;
 * - ours: while the lowest priority is in play, the limit never goes below twice what the
 *   higher priorities alone had in flight (+ √limit). The guard is there to shed the lowest
 *   priority first; without this floor a slower (not overloaded) upstream — whose latency
 *   stays above tolerance × baseline for the whole fault — squeezed the limit until paying
 *   requests were refused too (measured: 94 % within-contract goodput and 86 % shed precision
 *   in `npm run overload`; a queue model in the unit tests shows the same). The rate limits,
 *   not the guard, hold the higher priorities to their contracts.
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
  /** The most requests of the higher priorities in flight at once; null when no request of the lowest priority came. */
  readonly peakHigh: number | null;
}

/** Pure: the next limit (a whole number within [min, max]). */
export function nextLimit(limit: number, w: LatencyWindow, s: AdaptiveSettings, minSamples: number): number {
  if (w.samples < minSamples || w.baselineMs <= 0 || w.latencyMs <= 0) return limit;
  const gradient = Math.min(1, Math.max(0.5, (s.tolerance * w.baselineMs) / w.latencyMs));
  let next: number;
  if (gradient < 1) {
    next = Math.min(limit, w.peakInflight) * gradient + Math.sqrt(limit);
  } else if (w.peakInflight >= limit / 2) {
    next = limit + Math.sqrt(limit);
  } else {
    next = limit;
  }
  if (w.peakHigh !== null) next = Math.max(next, 2 * w.peakHigh + Math.sqrt(limit));
  return Math.round(Math.min(s.max, Math.max(s.min, next)));
}
