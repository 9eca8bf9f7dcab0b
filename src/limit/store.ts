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

/** Decides atomically in the store. One implementation per backend; one contract suite for all. */
export interface LimitStore {
  /** Counts the request when allowed. */
  decide(req: LimitRequest): Promise<LimitResult>;
  /** Same answer as `decide` would give, without counting anything. */
  peek(req: LimitRequest): Promise<LimitResult>;
}
