import type { StoredKey } from '../auth/keyStore';
import type { Clock } from '../clock';
import type { FailureMode } from '../config/load';
import { GatewayError } from '../errors';
import { civilFromDays, DAY_MS } from './calendar';
import type { DenyCache } from './denyCache';
import type { MemoryLimitStore } from './memoryLimitStore';
import { compileTemplate, planResult, planSubject, type Plan, type PlanResult, type PlanTemplate } from './plan';
import type { KeyLimits } from './planLimits';
import { effectiveLimit, type HealthStatus } from './policy';
import type { StoreBreaker } from './storeBreaker';
import type { LimitStore, QuotaChange, QuotaUsage } from './store';
import type { Tier, TierSet } from './tiers';

export interface LimitDecision {
  /** The key's tier with its `limits` applied. */
  readonly tier: Tier;
  readonly plan: Plan;
  readonly result: PlanResult;
}

export interface PlannedRequest {
  readonly tier: Tier;
  readonly plan: Plan;
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

/** What the hot path remembers per key record: its plan of cost 1 under the tiers, health and ramp in force. */
interface Planned extends PlannedRequest {
  readonly tiers: TierSet;
  readonly health: HealthStatus;
  readonly ramp: number;
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
 * The key's tier with the key's own `limits` over it (SPEC §9). Burst is never below limit:
 * a key that sets only `burst` below its tier's limit has its limit lowered to it; one that
 * sets only `limit` above its tier's burst has its burst raised to it.
 */
export function applyKeyLimits(tier: Tier, limits: KeyLimits | undefined): Tier {
  if (limits === undefined) return tier;
  const merged = { ...tier, ...limits } as Tier;
  if (merged.burst >= merged.limit) return merged;
  return limits.limit === undefined ? { ...merged, limit: merged.burst } : { ...merged, burst: merged.limit };
}

/** Day of the month (1–31, UTC) of an ISO-8601 instant: a monthly `"anchor":"key"` quota resets on it. */
export function anchorDay(createdAt: string): number {
  const ms = Date.parse(createdAt);
  return Number.isFinite(ms) ? civilFromDays(Math.floor(ms / DAY_MS)).day : 1;
}

/**
 * Key × tier × health → plan, then the decision: the deny cache (`heldDenial`), else the
 * store through the breaker, else STORE_FAILURE_MODE (`decide`).
 */
export class Limiter {
  /** Per key record (the key cache hands out the same object while fresh): no work per request. */
  private planned = new WeakMap<StoredKey, Planned>();

  /** The priority the in-flight guard sheds first; null when every tier has the same one. */
  private shedPriority: number | null;

  constructor(private readonly deps: LimiterDeps, private tiers: TierSet) {
    this.shedPriority = shedPriorityOf(tiers);
  }

  setTiers(tiers: TierSet): void {
    this.tiers = tiers;
    this.shedPriority = shedPriorityOf(tiers);
    this.planned = new WeakMap();
    this.deps.denyCache.clear();
  }

  /** Whether requests of `tier` may hold only half of the in-flight guard's slots. */
  shedFirst(tier: Tier): boolean {
    return tier.priority === this.shedPriority;
  }

  get tierSet(): TierSet {
    return this.tiers;
  }

  /**
   * The counters this key's request meets, counting `cost` (1–1000); null when its tier is not
   * in force. `ramp`: how far limits have come back after an automatic recovery (policy.effectiveLimit).
   */
  request(key: StoredKey, health: HealthStatus, cost = 1, ramp = 1): PlannedRequest | null {
    let p = this.planned.get(key);
    if (p === undefined || p.tiers !== this.tiers || p.health !== health || p.ramp !== ramp) {
      const built = this.build(key, health, ramp);
      if (built === null) return null;
      p = built;
      this.planned.set(key, p);
    }
    return cost === 1 ? p : { tier: p.tier, plan: { subject: p.plan.subject, template: p.plan.template, cost } };
  }

  private build(key: StoredKey, health: HealthStatus, ramp: number): Planned | null {
    const base = this.tiers.tiers.get(key.tier);
    if (base === undefined) return null;
    const tier = applyKeyLimits(base, key.limits);
    const template: PlanTemplate = compileTemplate({
      tierName: base.name,
      algorithm: tier.algorithm,
      mainLimit: effectiveLimit(tier, health, ramp),
      windowSeconds: this.tiers.windowSeconds,
      windows: tier.windows,
      quota: tier.quota,
      keyDay: tier.quota?.anchor === 'key' ? anchorDay(key.createdAt) : 1,
    });
    return { tiers: this.tiers, health, ramp, tier, plan: { subject: planSubject(key.id, key.identity), template, cost: 1 } };
  }

  /**
   * A denial held by the deny cache, decided without the store (and without a promise:
   * the rejected path stays synchronous); null when the store must be asked.
   */
  heldDenial(planned: PlannedRequest): LimitDecision | null {
    const { plan } = planned;
    const cached = this.deps.denyCache.get(plan.subject, plan.template, plan.cost);
    return cached === null ? null : { tier: planned.tier, plan, result: cached };
  }

  /** When `heldDenial` had none: the store through the breaker, else STORE_FAILURE_MODE. */
  decide(planned: PlannedRequest): Promise<LimitDecision> {
    const { breaker, store } = this.deps;
    const { plan } = planned;
    if (breaker === null) return store.decide(plan).then((result) => this.fromStore(planned, result, this.deps.clock()));
    if (breaker.isOpen) return settled(() => this.fallback(planned));
    const askedAt = this.deps.clock();
    return breaker.call(() => store.decide(plan)).then(
      (result) => this.fromStore(planned, result, askedAt),
      // The breaker has counted the failure; the failure mode decides.
      () => this.fallback(planned),
    );
  }

  /** Usage without counting (admin). */
  async peek(plan: Plan): Promise<PlanResult> {
    const { breaker, store } = this.deps;
    if (breaker === null) return store.peek(plan);
    try {
      return await breaker.call(() => store.peek(plan));
    } catch {
      return this.deps.local.decideSync(plan, true);
    }
  }

  /** Quota usage, or a top-up or reset (admin); straight to the store: an operator should see it fail. */
  async changeQuota(plan: Plan, change: QuotaChange | null): Promise<QuotaUsage> {
    const usage = await this.deps.store.changeQuota(plan, change);
    if (change !== null) this.deps.denyCache.clear();
    return usage;
  }

  private fromStore(planned: PlannedRequest, result: PlanResult, askedAt: number): LimitDecision {
    const { plan } = planned;
    if (!result.allowed) this.deps.denyCache.put(plan.subject, plan.template, plan.cost, result, askedAt);
    return { tier: planned.tier, plan, result };
  }

  private fallback(planned: PlannedRequest): LimitDecision {
    this.deps.onFallback();
    const { plan } = planned;
    switch (this.deps.failureMode) {
      case 'local':
        return { tier: planned.tier, plan, result: this.deps.local.decideSync(plan, false) };
      case 'open': {
        const now = this.deps.clock();
        // Allowed without counting: the headers must not claim a full quota, so remaining is 0.
        const counters: number[] = [];
        for (const c of plan.template.counters) counters.push(0, now + (c.windowMs > 0 ? c.windowMs : DAY_MS));
        return { tier: planned.tier, plan, result: planResult(true, 0, now, 0, counters) };
      }
      case 'closed':
        throw new GatewayError('store_unavailable');
    }
  }
}
