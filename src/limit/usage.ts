import type { Plan, PlanResult } from './plan';
import type { QuotaUsage } from './store';

/**
 * `GET /admin/keys/:id/usage` (SPEC §4, §9), pure: from a peek (which answers as if one
 * request were made) back to what is left now.
 */
export function usageBody(id: string, tier: string, plan: Plan, peek: PlanResult, quota: QuotaUsage | null): Record<string, unknown> {
  const { counters } = plan.template;
  const left = (i: number): number => (peek.allowed ? peek.counters[2 * i] + plan.cost : peek.counters[2 * i]);
  const reset = (i: number): number => Math.ceil(peek.counters[2 * i + 1] / 1000);
  const windows = [];
  for (let i = 1; i < counters.length; i++) {
    if (counters[i].kind !== 'window') continue;
    windows.push({ limit: counters[i].limit, windowSeconds: counters[i].windowMs / 1000, remaining: left(i), reset: reset(i) });
  }
  return {
    id, tier, limit: counters[0].limit, remaining: left(0), reset: reset(0), windows,
    quota: quota === null ? null : quotaBody(quota),
  };
}

export function quotaBody(q: QuotaUsage): Record<string, unknown> {
  return { limit: q.limit, used: q.used, remaining: q.remaining, reset: Math.ceil(q.resetMs / 1000) };
}
