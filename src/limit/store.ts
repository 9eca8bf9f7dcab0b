import type { Decision } from './algorithms';
import type { Plan, PlanResult } from './plan';

export interface LimitResult extends Decision {
  /** The store's clock at the decision (Redis `TIME` for the Redis store). */
  readonly nowMs: number;
}

/**
 * Every LimitResult is made here, so all have one shape (one hidden class): the hot path
 * reads them at several sites, and results of mixed shapes — e.g. from `{ ...decision }`,
 * which also costs a runtime copy — made those reads megamorphic misses (V8 --log-ic).
 */
export function limitResult(allowed: boolean, remaining: number, resetMs: number, retryAtMs: number, nowMs: number): LimitResult {
  return { allowed, remaining, resetMs, retryAtMs, nowMs };
}

/** `reset`: the period starts afresh (count 0, no top-up); `add`: N more requests for the current period. */
export type QuotaChange = { readonly reset: true } | { readonly add: number };

/** A quota as it stands (admin usage, `POST /admin/keys/:id/quota`). */
export interface QuotaUsage {
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  /** Epoch ms the period ends. */
  readonly resetMs: number;
}

/** Decides atomically in the store. One implementation per backend; one contract suite for all. */
export interface LimitStore {
  /** Every counter of the plan in one atomic step; counts in all of them only when all allow. */
  decide(plan: Plan): Promise<PlanResult>;
  /** Same answer as `decide` would give, without counting anything. */
  peek(plan: Plan): Promise<PlanResult>;
  /** The plan's quota counter (`plan.template.quotaIndex` ≥ 0) for its current period, changed first unless `change` is null. */
  changeQuota(plan: Plan, change: QuotaChange | null): Promise<QuotaUsage>;
}
