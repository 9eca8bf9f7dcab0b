import { quotaPeriod, type QuotaPeriodName } from './calendar';

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
 * Weighted count = previous × (W − elapsed) / W + current; allowed when count + cost ≤ limit.
 * Multiplied through by W so every comparison is on integers (W in whole ms). `free`: the
 * units left before this request (what is left when it is not counted).
 */
export function slidingWindow(
  state: SlidingWindowState | null, nowMs: number, limit: number, windowMs: number, cost = 1,
): { decision: Decision; next: SlidingWindowState | null; free: number } {
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
  const used = previous * (windowMs - elapsed) + (current + cost) * windowMs;
  const capacity = limit * windowMs;
  const unused = capacity - used + cost * windowMs;
  const free = unused > 0 ? floorDiv(unused, windowMs) : 0;
  if (used <= capacity) {
    return {
      decision: { allowed: true, remaining: floorDiv(capacity - used, windowMs), resetMs, retryAtMs: 0 },
      next: { window, current: current + cost, previous },
      free,
    };
  }
  let retryAtMs: number;
  if (limit <= 0 || cost > limit) {
    retryAtMs = resetMs; // nothing this big is allowed at this limit; look again next window
  } else if (current + cost <= limit) {
    // This window: wait until previous × (W − e) ≤ (limit − current − cost) × W.
    retryAtMs = windowStart + windowMs - floorDiv((limit - current - cost) * windowMs, previous);
  } else {
    // Next window, where this window's count becomes the weighted previous one.
    retryAtMs = resetMs + Math.max(0, windowMs - floorDiv((limit - cost) * windowMs, current));
  }
  return { decision: { allowed: false, remaining: 0, resetMs, retryAtMs }, next: null, free };
}

/**
 * GCRA: a token bucket of capacity `limit` refilled one token every T = W / limit ms,
 * kept as the theoretical arrival time (TAT). Allowed when TAT + T − W ≤ now. T can be
 * fractional, and summing it in doubles drifts by far less than a millisecond, so the
 * comparisons allow min(T/2, 1 ms) of rounding: a token is never given back early by
 * more than that, and `limit` requests at one instant always fit.
 */
export function gcra(
  tat: number | null, nowMs: number, limit: number, windowMs: number, cost = 1,
): { decision: Decision; nextTat: number | null; free: number } {
  if (limit <= 0 || cost > limit) {
    // Nothing this big is ever allowed at this limit; look again in a window.
    return { decision: { allowed: false, remaining: 0, resetMs: nowMs + windowMs, retryAtMs: nowMs + windowMs }, nextTat: null, free: 0 };
  }
  const interval = windowMs / limit;
  const slack = Math.min(interval / 2, 1);
  const base = tat === null || tat < nowMs ? nowMs : tat;
  const nextTat = base + interval * cost;
  const allowAt = nextTat - windowMs;
  const free = Math.min(limit, Math.max(0, Math.floor((windowMs + slack - (base - nowMs)) / interval)));
  if (allowAt <= nowMs + slack) {
    const remaining = Math.min(limit - cost, Math.max(0, Math.floor((windowMs + slack - (nextTat - nowMs)) / interval)));
    return { decision: { allowed: true, remaining, resetMs: Math.ceil(nextTat), retryAtMs: 0 }, nextTat, free };
  }
  return { decision: { allowed: false, remaining: 0, resetMs: Math.ceil(base), retryAtMs: Math.ceil(allowAt - slack) }, nextTat: null, free };
}

/** A quota's count: `period` is the id of the period it counts (see calendar.ts); `added` is top-up for it. */
export interface QuotaState {
  readonly period: number;
  readonly used: number;
  readonly added: number;
}

/**
 * Quota: `limit` (+ any top-up) per calendar period; allowed when used + cost ≤ limit + added.
 * A denial lasts until the period ends. A state of another period counts as empty.
 */
export function quota(
  state: QuotaState | null, nowMs: number, limit: number, period: QuotaPeriodName, anchor: number, cost = 1,
): { decision: Decision; next: QuotaState | null; free: number; endMs: number } {
  const p = quotaPeriod(period, anchor, nowMs);
  const same = state !== null && state.period === p.id;
  const used = same ? state.used : 0;
  const added = same ? state.added : 0;
  const cap = limit + added;
  const free = Math.max(0, cap - used);
  if (used + cost <= cap) {
    return { decision: { allowed: true, remaining: cap - used - cost, resetMs: p.endMs, retryAtMs: 0 }, next: { period: p.id, used: used + cost, added }, free, endMs: p.endMs };
  }
  return { decision: { allowed: false, remaining: 0, resetMs: p.endMs, retryAtMs: p.endMs }, next: null, free, endMs: p.endMs };
}

/** Whole seconds a client must wait: rounded up, at least 1 (SPEC §3 step 4). */
export function retryAfterSeconds(retryAtMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((retryAtMs - nowMs) / 1000));
}
