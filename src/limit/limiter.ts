import type { Clock } from '../clock';
import type { FailureMode } from '../config/load';
import { GatewayError } from '../errors';
import type { DenyCache } from './denyCache';
import type { MemoryLimitStore } from './memoryLimitStore';
import { effectiveLimit, type HealthStatus } from './policy';
import type { StoreBreaker } from './storeBreaker';
import { limitResult, type LimitRequest, type LimitResult, type LimitStore } from './store';
import type { Tier, TierSet } from './tiers';

export interface LimitDecision {
  readonly tier: Tier;
  readonly limit: number;
  readonly windowSeconds: number;
  readonly result: LimitResult;
}

export interface LimiterDeps {
  readonly store: LimitStore;
  /** Null for the memory store, which cannot fail. */
  readonly breaker: StoreBreaker | null;
  /** Decides in process while the store is unusable (STORE_FAILURE_MODE=local). */
  readonly local: MemoryLimitStore;
  readonly denyCache: DenyCache;
  readonly failureMode: FailureMode;
  readonly clock: Clock;
  readonly onFallback: () => void;
}

function shedPriorityOf(tiers: TierSet): number | null {
  const priorities = [...tiers.tiers.values()].map((t) => t.priority);
  return Math.max(...priorities) > tiers.lowestPriority ? tiers.lowestPriority : null;
}

/** `fn`'s value as a promise, or its exception as a rejection. */
function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Tier × health → limit, then the decision: the deny cache (`heldDenial`), else the
 * store through the breaker, else STORE_FAILURE_MODE (`decide`).
 */
export class Limiter {
  constructor(private readonly deps: LimiterDeps, private tiers: TierSet) {
    this.shedPriority = shedPriorityOf(tiers);
  }

  setTiers(tiers: TierSet): void {
    this.tiers = tiers;
    this.shedPriority = shedPriorityOf(tiers);
    this.deps.denyCache.clear();
  }

  /** The priority the in-flight guard sheds first; null when every tier has the same one. */
  private shedPriority: number | null;

  /** Whether requests of `tier` may hold only half of the in-flight guard's slots. */
  shedFirst(tier: Tier): boolean {
    return tier.priority === this.shedPriority;
  }

  /** `ramp`: how far limits have come back after an automatic recovery (policy.effectiveLimit). */
  request(id: string, tierName: string, health: HealthStatus, ramp = 1): { tier: Tier; req: LimitRequest } | null {
    const tier = this.tiers.tiers.get(tierName);
    if (tier === undefined) return null;
    const req = { id, algorithm: tier.algorithm, limit: effectiveLimit(tier, health, ramp), windowMs: this.tiers.windowSeconds * 1000 };
    return { tier, req };
  }

  /**
   * A denial held by the deny cache, decided without the store (and without a promise:
   * the rejected path stays synchronous); null when the store must be asked.
   */
  heldDenial(tier: Tier, req: LimitRequest): LimitDecision | null {
    const cached = this.deps.denyCache.get(req.id, req.limit, req.algorithm);
    return cached === null ? null : { tier, limit: req.limit, windowSeconds: this.tiers.windowSeconds, result: cached };
  }

  /** When `heldDenial` had none: the store through the breaker, else STORE_FAILURE_MODE. */
  decide(tier: Tier, req: LimitRequest): Promise<LimitDecision> {
    const { breaker, store } = this.deps;
    if (breaker === null) return store.decide(req).then((result) => this.fromStore(tier, req, result, this.deps.clock()));
    if (breaker.isOpen) return settled(() => this.fallback(tier, req));
    const askedAt = this.deps.clock();
    return breaker.call(() => store.decide(req)).then(
      (result) => this.fromStore(tier, req, result, askedAt),
      // The breaker has counted the failure; the failure mode decides.
      () => this.fallback(tier, req),
    );
  }

  /** Usage without counting (admin). */
  async peek(req: LimitRequest): Promise<LimitResult> {
    const { breaker, store } = this.deps;
    if (breaker === null) return store.peek(req);
    try {
      return await breaker.call(() => store.peek(req));
    } catch {
      return this.deps.local.decideSync(req, true);
    }
  }

  private fromStore(tier: Tier, req: LimitRequest, result: LimitResult, askedAt: number): LimitDecision {
    if (!result.allowed) this.deps.denyCache.put(req.id, req.limit, req.algorithm, result, askedAt);
    return { tier, limit: req.limit, windowSeconds: this.tiers.windowSeconds, result };
  }

  private fallback(tier: Tier, req: LimitRequest): LimitDecision {
    this.deps.onFallback();
    const windowSeconds = this.tiers.windowSeconds;
    switch (this.deps.failureMode) {
      case 'local':
        return { tier, limit: req.limit, windowSeconds, result: this.deps.local.decideSync(req, false) };
      case 'open': {
        const now = this.deps.clock();
        // Allowed without counting: the headers must not claim a full quota, so remaining is 0.
        return { tier, limit: req.limit, windowSeconds, result: limitResult(true, 0, now + req.windowMs, 0, now) };
      }
      case 'closed':
        throw new GatewayError('store_unavailable');
    }
  }
}
