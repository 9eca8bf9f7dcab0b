import type { StoredKey } from '../auth/keyStore';
import type { Clock } from '../clock';
import type { FailureMode } from '../config/load';
import { GatewayError } from '../errors';
import { civilFromDays, DAY_MS } from './calendar';
import type { DenyCache } from './denyCache';
import type { MemoryLimitStore } from './memoryLimitStore';
import { compileTemplate, extendTemplate, planResult, planSubject, rateSpec, type Plan, type PlanResult, type PlanTemplate } from './plan';
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

/**
 * A route's limit for one tier (SPEC §10), counted per key (or identity) and route in the
 * same atomic step as the key's own counters. The same object for as long as the routes
 * file is in force: plans with it are cached by its identity.
 */
export interface RouteLimitInput {
  /** The route's name: its counter's name in the draft headers and its store key. */
  readonly name: string;
  readonly limit: number;
  readonly windowSeconds: number;
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
  /** Per tier, for requests without a key record (tier `anonymous`, counted per client IP). */
  private byTier = new Map<string, Planned>();
  /** Templates with a route's counter added, per base template and route limit. */
  private withRoutes = new WeakMap<PlanTemplate, WeakMap<RouteLimitInput, PlanTemplate>>();

  /** The priority the in-flight guard sheds first; null when every tier has the same one. */
  private shedPriority: number | null;

  constructor(private readonly deps: LimiterDeps, private tiers: TierSet) {
    this.shedPriority = shedPriorityOf(tiers);
  }

  setTiers(tiers: TierSet): void {
    this.tiers = tiers;
    this.shedPriority = shedPriorityOf(tiers);
    this.planned = new WeakMap();
    this.byTier = new Map();
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
   * The counters this key's request meets, counting `cost` (1–1000), with the route's limit
   * for its tier when it has one (SPEC §10); null when its tier is not in force. `ramp`: how
   * far limits have come back after an automatic recovery (policy.effectiveLimit).
   */
  request(key: StoredKey, health: HealthStatus, cost = 1, ramp = 1, route: RouteLimitInput | null = null): PlannedRequest | null {
    let p = this.planned.get(key);
    if (p === undefined || p.tiers !== this.tiers || p.health !== health || p.ramp !== ramp) {
      const built = this.build(key, health, ramp);
      if (built === null) return null;
      p = built;
      this.planned.set(key, p);
    }
    return this.withCost(p, p.plan.subject, cost, route);
  }

  /**
   * A request without a key record, counted as `subject` under the tier's own limits: an
   * anonymous request on an `auth: optional` route (SPEC §10), counted per client IP.
   */
  requestAs(subject: string, tierName: string, health: HealthStatus, cost = 1, ramp = 1, route: RouteLimitInput | null = null): PlannedRequest | null {
    let p = this.byTier.get(tierName);
    if (p === undefined || p.tiers !== this.tiers || p.health !== health || p.ramp !== ramp) {
      const built = this.build({ id: subject, tier: tierName, createdAt: '' } as StoredKey, health, ramp);
      if (built === null) return null;
      p = built;
      this.byTier.set(tierName, p);
    }
    return this.withCost(p, subject, cost, route);
  }

  /** The cached plan, or one with another subject, cost or a route's counter (one small object). */
  private withCost(p: Planned, subject: string, cost: number, route: RouteLimitInput | null): PlannedRequest {
    if (route === null && cost === 1 && subject === p.plan.subject) return p;
    const template = route === null ? p.plan.template : this.routeTemplate(p.plan.template, route, p.tier);
    return { tier: p.tier, plan: { subject, template, cost } };
  }

  /**
   * The template with the route's counter after the key's own (one atomic store step still),
   * made once per template and route: the deny cache tells templates apart by identity.
   * Its store key names the route, the algorithm and the window, so a changed route limit
   * starts a fresh count rather than reading another's.
   */
  private routeTemplate(base: PlanTemplate, route: RouteLimitInput, tier: Tier): PlanTemplate {
    let forBase = this.withRoutes.get(base);
    if (forBase === undefined) {
      forBase = new WeakMap();
      this.withRoutes.set(base, forBase);
    }
    let t = forBase.get(route);
    if (t === undefined) {
      const spec = rateSpec(tier.algorithm);
      t = extendTemplate(base, [{
        name: route.name, kind: 'route', key: `r:${route.name}:${spec}:${route.windowSeconds}s`, spec,
        limit: route.limit, windowMs: route.windowSeconds * 1000, anchor: 0,
      }]);
      forBase.set(route, t);
    }
    return t;
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
