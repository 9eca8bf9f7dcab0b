import { retryAfterSeconds } from '../limit/algorithms';
import type { HeaderList } from '../errorResponse';
import type { Counter, Plan, PlanResult } from '../limit/plan';

/** The `w` of a quota in RateLimit-Policy: its nominal length (a month as 30 days, as Tyk counts one). */
function windowSeconds(c: Counter): number {
  if (c.windowMs > 0) return c.windowMs / 1000;
  return c.spec === 'day' ? 86_400 : 2_592_000;
}

/**
 * The rate-limit response headers (SPEC §3, §9), pure. `Retry-After` only on a denial.
 * X-RateLimit-* describe the main window (counter 0); X-Quota-* the quota, when there is one.
 * Draft fields follow draft-ietf-httpapi-ratelimit-headers-11 as RFC 9651 structured
 * fields: RateLimit-Policy lists every counter the request met ("free";q=20;w=60,
 * "free-1s";q=5;w=1), RateLimit the binding one ("free";r=5;t=30).
 */
export function rateLimitHeaders(plan: Plan, result: PlanResult, draft: boolean): HeaderList {
  const { counters } = plan.template;
  const values = result.counters;
  const remaining = values[0] > 0 ? values[0] : 0;
  const out: HeaderList = [
    ['X-RateLimit-Limit', String(counters[0].limit)],
    ['X-RateLimit-Remaining', String(remaining)],
    ['X-RateLimit-Reset', String(Math.ceil(values[1] / 1000))],
  ];
  const q = plan.template.quotaIndex;
  if (q >= 0) {
    out.push(['X-Quota-Limit', String(counters[q].limit)]);
    out.push(['X-Quota-Remaining', String(values[2 * q] > 0 ? values[2 * q] : 0)]);
    out.push(['X-Quota-Reset', String(Math.ceil(values[2 * q + 1] / 1000))]);
  }
  let retryAfter = 0;
  if (!result.allowed) {
    retryAfter = retryAfterSeconds(result.retryAtMs, result.nowMs);
    out.push(['Retry-After', String(retryAfter)]);
  }
  if (draft) {
    // Counter names are tier and route names ([a-z0-9_-]) with suffixes, so valid sf-strings.
    let policy = '';
    for (let i = 0; i < counters.length; i++) {
      policy += `${i === 0 ? '' : ', '}${JSON.stringify(counters[i].name)};q=${counters[i].limit};w=${windowSeconds(counters[i])}`;
    }
    const b = result.binding;
    const r = values[2 * b] > 0 ? values[2 * b] : 0;
    const t = result.allowed ? Math.max(0, Math.ceil((values[2 * b + 1] - result.nowMs) / 1000)) : retryAfter;
    out.push(['RateLimit-Policy', policy]);
    out.push(['RateLimit', `${JSON.stringify(counters[b].name)};r=${r};t=${t}`]);
  }
  return out;
}
