/**
 * How long a shed client is told to wait (SPEC §8: 503 `overloaded` with a jittered
 * `Retry-After`). Spread evenly over [base/2, base·3/2] so that refused clients do not all
 * return in the same second — the thundering herd AWS's "exponential backoff and jitter"
 * and Google SRE's "handling overload" warn about.
 */
export const SHED_RETRY_BASE_S = 10;

/** `random` in [0, 1), injected for tests. */
export function shedRetryAfter(random: number, baseS = SHED_RETRY_BASE_S): number {
  return Math.max(1, Math.round(baseS / 2 + random * baseS));
}
