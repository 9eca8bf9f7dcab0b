import { retryAfterSeconds } from '../limit/algorithms';
import type { HeaderList } from '../errorResponse';
import type { LimitResult } from '../limit/store';

export interface HeaderInput {
  readonly tier: string;
  readonly limit: number;
  readonly windowSeconds: number;
  readonly result: LimitResult;
  readonly draft: boolean;
}


/**
 * The rate-limit response headers (SPEC §3), pure. `Retry-After` only on a denial.
 * Draft fields follow draft-ietf-httpapi-ratelimit-headers-11 as RFC 9651 structured
 * fields: RateLimit-Policy: "free";q=20;w=60 and RateLimit: "free";r=5;t=30.
 */
export function rateLimitHeaders(h: HeaderInput): HeaderList {
  const { result } = h;
  const remaining = result.remaining > 0 ? result.remaining : 0;
  const reset = Math.ceil(result.resetMs / 1000);
  const out: HeaderList = [
    ['X-RateLimit-Limit', String(h.limit)],
    ['X-RateLimit-Remaining', String(remaining)],
    ['X-RateLimit-Reset', String(reset)],
  ];
  let retryAfter = 0;
  if (!result.allowed) {
    retryAfter = retryAfterSeconds(result.retryAtMs, result.nowMs);
    out.push(['Retry-After', String(retryAfter)]);
  }
  if (h.draft) {
    const t = result.allowed ? Math.max(0, Math.ceil((result.resetMs - result.nowMs) / 1000)) : retryAfter;
    const name = JSON.stringify(h.tier); // tier names are [a-z0-9_-], so this is a valid sf-string
    out.push(['RateLimit-Policy', `${name};q=${h.limit};w=${h.windowSeconds}`]);
    out.push(['RateLimit', `${name};r=${remaining};t=${t}`]);
  }
  return out;
}
