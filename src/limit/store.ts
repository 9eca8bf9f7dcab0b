import type { Decision } from './algorithms';
import type { Algorithm } from './tiers';

export interface LimitRequest {
  /** The caller's identity (the API key's record id; never the key). */
  readonly id: string;
  readonly algorithm: Algorithm;
  readonly limit: number;
  readonly windowMs: number;
}

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

/** Decides atomically in the store. One implementation per backend; one contract suite for all. */
export interface LimitStore {
  /** Counts the request when allowed. */
  decide(req: LimitRequest): Promise<LimitResult>;
  /** Same answer as `decide` would give, without counting anything. */
  peek(req: LimitRequest): Promise<LimitResult>;
}
