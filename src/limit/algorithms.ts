/**
 * The allow/deny arithmetic of both algorithms, pure functions of (state, now, limit,
 * window). The Redis Lua scripts in `redisScripts.ts` are line-for-line ports of these;
 * the store contract suite runs both against the same expectations.
 */

export interface Decision {
  readonly allowed: boolean;
  /** Requests allowed right now after this one; 0 when denied. */
  readonly remaining: number;
  /** Epoch ms: sliding-window, the end of the current window; gcra, when the bucket is full again. */
  readonly resetMs: number;
  /** Epoch ms from which a retry is allowed; 0 when allowed. */
  readonly retryAtMs: number;
}

/** Sliding window: counts of the current and previous epoch-aligned fixed windows. */
export interface SlidingWindowState {
  readonly window: number;
  readonly current: number;
  readonly previous: number;
}

/** floor(a / b) for non-negative integers, exact even where the double quotient rounds up. */
export function floorDiv(a: number, b: number): number {
  let q = Math.floor(a / b);
  if (q * b > a) q -= 1;
  return q;
}

/**
 * Weighted count = previous × (W − elapsed) / W + current; allowed when count + 1 ≤ limit.
 * Multiplied through by W so every comparison is on integers (W in whole ms).
 */
export function slidingWindow(
  state: SlidingWindowState | null, nowMs: number, limit: number, windowMs: number,
): { decision: Decision; next: SlidingWindowState | null } {
  const now = Math.floor(nowMs);
  const window = Math.floor(now / windowMs);
  const windowStart = window * windowMs;
  let previous = 0;
  let current = 0;
  if (state !== null && state.window === window) {
    previous = state.previous;
    current = state.current;
  } else if (state !== null && state.window === window - 1) {
    previous = state.current;
  }
  const elapsed = now - windowStart;
  const resetMs = windowStart + windowMs;
  const used = previous * (windowMs - elapsed) + (current + 1) * windowMs;
  const capacity = limit * windowMs;
  if (used <= capacity) {
    return {
      decision: { allowed: true, remaining: floorDiv(capacity - used, windowMs), resetMs, retryAtMs: 0 },
      next: { window, current: current + 1, previous },
    };
  }
  let retryAtMs: number;
  if (limit <= 0) {
    retryAtMs = resetMs; // nothing is allowed at this limit; look again next window
  } else if (current + 1 <= limit) {
    // This window: wait until previous × (W − e) ≤ (limit − current − 1) × W.
    retryAtMs = windowStart + windowMs - floorDiv((limit - current - 1) * windowMs, previous);
  } else {
    // Next window, where this window's count becomes the weighted previous one.
    retryAtMs = resetMs + Math.max(0, windowMs - floorDiv((limit - 1) * windowMs, current));
  }
  return { decision: { allowed: false, remaining: 0, resetMs, retryAtMs }, next: null };
}

/**
 * GCRA: a token bucket of capacity `limit` refilled one token every T = W / limit ms,
 * kept as the theoretical arrival time (TAT). Allowed when TAT + T − W ≤ now. T can be
 * fractional, and summing it in doubles drifts by far less than a millisecond, so the
 * comparisons allow min(T/2, 1 ms) of rounding: a token is never given back early by
 * more than that, and `limit` requests at one instant always fit.
 */
export function gcra(
  tat: number | null, nowMs: number, limit: number, windowMs: number,
): { decision: Decision; nextTat: number | null } {
  if (limit <= 0) {
    return { decision: { allowed: false, remaining: 0, resetMs: nowMs + windowMs, retryAtMs: nowMs + windowMs }, nextTat: null };
  }
  const interval = windowMs / limit;
  const slack = Math.min(interval / 2, 1);
  const base = tat === null || tat < nowMs ? nowMs : tat;
  const nextTat = base + interval;
  const allowAt = nextTat - windowMs;
  if (allowAt <= nowMs + slack) {
    const remaining = Math.min(limit - 1, Math.max(0, Math.floor((windowMs + slack - (nextTat - nowMs)) / interval)));
    return { decision: { allowed: true, remaining, resetMs: Math.ceil(nextTat), retryAtMs: 0 }, nextTat };
  }
  return { decision: { allowed: false, remaining: 0, resetMs: Math.ceil(base), retryAtMs: Math.ceil(allowAt - slack) }, nextTat: null };
}

/** Whole seconds a client must wait: rounded up, at least 1 (SPEC §3 step 4). */
export function retryAfterSeconds(retryAtMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((retryAtMs - nowMs) / 1000));
}
