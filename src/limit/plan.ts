/**
 * The multi-counter plan (SPEC §9, §10), pure: which counters one request meets and how the
 * store answers for all of them at once. A plan is decided in ONE atomic store step (one
 * EVALSHA on Redis): allowed only if every counter allows `cost` more, then every counter
 * counts it; a refused request counts nowhere.
 *
 * Taken from peers (docs/plans.md says more): Envoy ratelimit's several descriptors per
 * request with a `hits_addend` (our `cost`), but decided in one script rather than a
 * pipeline of INCRBYs, so a refusal does not pollute the other counters (envoyproxy/ratelimit
 * #1060, STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT); Unkey's named limits and shared identity
 * counters; Kong rate-limiting-advanced's several (limit, window) pairs per consumer.
 */
import type { QuotaPeriodName } from './calendar';
import type { LimitResult } from './store';
import type { Algorithm } from './tiers';

export type CounterKind = 'rate' | 'window' | 'quota' | 'route';
export const COUNTER_KINDS: readonly CounterKind[] = ['rate', 'window', 'quota', 'route'];

/** How the store counts: the two rate algorithms, or a calendar quota. Also the Lua script's code. */
export type CounterSpec = 'sw' | 'gcra' | 'day' | 'month';

export interface Counter {
  /** Its name in the draft headers: "<tier>", "<tier>-<w>s", "<tier>-quota", "<route>". */
  readonly name: string;
  readonly kind: CounterKind;
  /** Store key under the subject's hash tag; stable across reloads, so counts survive them. */
  readonly key: string;
  readonly spec: CounterSpec;
  /** Requests per window, or per quota period. */
  readonly limit: number;
  /** Rate counters: the window in ms; quotas: 0. */
  readonly windowMs: number;
  /** Month quotas: the day of the month a period starts (1 = calendar month); otherwise 0. */
  readonly anchor: number;
}

/**
 * The counters of one (limits × health state), compiled once and shared by every request
 * that meets them: the hot path builds no counter objects. The deny cache compares templates
 * by identity.
 */
export interface PlanTemplate {
  readonly counters: readonly Counter[];
  /** Index of the quota counter, -1 if none (X-Quota-* headers). */
  readonly quotaIndex: number;
}

export interface Plan {
  /** Whose counters: a key's record id, or `i:<identity>`; the one hash tag of all its store keys. */
  readonly subject: string;
  readonly template: PlanTemplate;
  /** 1–1000: counts this many in every counter and needs this many free in each. (0 never reaches a store.) */
  readonly cost: number;
}

/**
 * The store's answer. `allowed`, `retryAtMs` (0 when allowed: else the soonest moment every
 * counter would allow it) and `nowMs` are for the plan; `remaining`/`resetMs` describe
 * counter 0 (the main window, X-RateLimit-*). `counters` holds every counter's
 * remaining and reset at [2i] and [2i + 1]: after this request when allowed, as things stand
 * when refused. `binding`: the refusing counter with the latest retry time, or when allowed
 * the counter with the fewest remaining.
 */
export interface PlanResult extends LimitResult {
  readonly binding: number;
  readonly counters: readonly number[];
}

/** Every PlanResult is made here: one shape (one hidden class) for the hot path's reads. */
export function planResult(allowed: boolean, retryAtMs: number, nowMs: number, binding: number, counters: readonly number[]): PlanResult {
  return { allowed, remaining: counters[0], resetMs: counters[1], retryAtMs, nowMs, binding, counters };
}

export function makeTemplate(counters: readonly Counter[]): PlanTemplate {
  return { counters, quotaIndex: counters.findIndex((c) => c.kind === 'quota') };
}

/** A template with more counters after these (the routes' limits of SPEC §10). */
export function extendTemplate(base: PlanTemplate, more: readonly Counter[]): PlanTemplate {
  return makeTemplate([...base.counters, ...more]);
}

/** The subject whose counters a key uses: keys sharing an identity share one set. */
export function planSubject(keyId: string, identity: string | undefined): string {
  return identity === undefined ? keyId : `i:${identity}`;
}

export interface WindowLimit {
  readonly limit: number;
  readonly windowSeconds: number;
}

export interface QuotaLimit {
  readonly limit: number;
  readonly period: QuotaPeriodName;
  /** `key`: monthly from the key's creation day; null: the calendar. */
  readonly anchor: 'key' | null;
}

/** What a template is compiled from: a tier's values, or a key's `limits` over them. */
export interface TemplateInput {
  readonly tierName: string;
  readonly algorithm: Algorithm;
  /** The main window's limit in the health state in force. */
  readonly mainLimit: number;
  readonly windowSeconds: number;
  readonly windows: readonly WindowLimit[];
  readonly quota: QuotaLimit | null;
  /** Day of the month the key was created (1–31), for `"anchor":"key"`. */
  readonly keyDay: number;
}

export function rateSpec(algorithm: Algorithm): CounterSpec {
  return algorithm === 'gcra' ? 'gcra' : 'sw';
}

/**
 * The counters a keyed request meets: the main window at the health state's effective limit,
 * then the extra windows (in force in every state), then the quota. Store keys: the main
 * window keeps the pre-§9 key (`sw`/`gcra`), so counts survive the upgrade; a window is
 * keyed by its length, a quota by its period, so removing one leaves the others' counts.
 */
export function compileTemplate(t: TemplateInput): PlanTemplate {
  const spec = rateSpec(t.algorithm);
  const counters: Counter[] = [{ name: t.tierName, kind: 'rate', key: spec, spec, limit: t.mainLimit, windowMs: t.windowSeconds * 1000, anchor: 0 }];
  for (const w of t.windows) {
    counters.push({ name: `${t.tierName}-${w.windowSeconds}s`, kind: 'window', key: `${spec}:${w.windowSeconds}s`, spec, limit: w.limit, windowMs: w.windowSeconds * 1000, anchor: 0 });
  }
  if (t.quota !== null) {
    const anchor = t.quota.period === 'month' ? (t.quota.anchor === 'key' ? t.keyDay : 1) : 0;
    counters.push({ name: `${t.tierName}-quota`, kind: 'quota', key: `q:${t.quota.period}`, spec: t.quota.period, limit: t.quota.limit, windowMs: 0, anchor });
  }
  return makeTemplate(counters);
}

/** The counter whose refusal (or scarcity) the response reports. */
export function bindingCounter(plan: Plan, result: PlanResult): Counter {
  return plan.template.counters[result.binding];
}
