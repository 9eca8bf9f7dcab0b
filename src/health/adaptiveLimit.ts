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
 *   upstream actually had in the second, not to a limit far above it, so the limit reaches
 *   the upstream's real capacity within seconds of a fault instead of shrinking from an unused
 *   maximum 20 % at a time.
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
  return Math.round(Math.min(s.max, Math.max(s.min, next)));
}
