/** Tier definitions (SPEC §2, §9): parsing and validation, pure. */
import type { QuotaLimit, WindowLimit } from './plan';
import { parseQuota, parseWindows } from './planLimits';

export type Algorithm = 'sliding-window' | 'gcra';
export const ALGORITHMS: readonly Algorithm[] = ['sliding-window', 'gcra'];

export interface Tier {
  readonly name: string;
  /** Guaranteed rate (the SLA), requests per window. */
  readonly limit: number;
  /** What NORMAL allows. */
  readonly burst: number;
  /** What DEGRADED allows. */
  readonly degraded: number;
  /** What CRITICAL allows (SPEC §8); 0 sheds the tier with 503 `overloaded`. */
  readonly critical: number;
  /** Higher is more important; the lowest priority in force may hold at most half of the in-flight guard's slots. */
  readonly priority: number;
  readonly algorithm: Algorithm;
  /** Extra rate windows, in force in every health state (SPEC §9). */
  readonly windows: readonly WindowLimit[];
  readonly quota: QuotaLimit | null;
  /** SPEC §10: `shadow` counts would-be refusals and lets them through; unset = LIMIT_MODE. */
  readonly mode?: 'enforce' | 'shadow';
}

export interface TierSet {
  readonly windowSeconds: number;
  readonly algorithm: Algorithm;
  readonly tiers: ReadonlyMap<string, Tier>;
  /** The lowest `priority` of any tier: the one the in-flight guard sheds first. */
  readonly lowestPriority: number;
}

export const TIER_NAME = /^[a-z0-9_-]{1,32}$/;
const TOP_FIELDS = new Set(['windowSeconds', 'algorithm', 'tiers']);
const TIER_FIELDS = new Set(['limit', 'burst', 'degraded', 'critical', 'priority', 'algorithm', 'windows', 'quota', 'mode']);
const MAX_PRIORITY = 1000;
const MODES = ['enforce', 'shadow'];
const MAX_WINDOW_S = 86_400;

export type TierParseResult = { ok: true; tiers: TierSet } | { ok: false; reasons: string[] };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function wholeNumber(v: unknown, min: number): v is number {
  return Number.isInteger(v) && (v as number) >= min;
}

/** Validates a parsed tiers document, collecting every reason it is invalid. */
export function parseTiers(doc: unknown): TierParseResult {
  const reasons: string[] = [];
  if (!isObject(doc)) return { ok: false, reasons: ['the file must hold a JSON object'] };
  for (const k of Object.keys(doc)) if (!TOP_FIELDS.has(k)) reasons.push(`unknown field "${k}" (allowed: windowSeconds, algorithm, tiers)`);
  const windowSeconds = doc.windowSeconds ?? 60;
  if (!wholeNumber(windowSeconds, 1) || windowSeconds > MAX_WINDOW_S) {
    reasons.push(`windowSeconds must be a whole number 1-${MAX_WINDOW_S}; got ${JSON.stringify(doc.windowSeconds)}`);
  }
  const algorithm = doc.algorithm ?? 'sliding-window';
  if (!ALGORITHMS.includes(algorithm as Algorithm)) {
    reasons.push(`algorithm must be one of ${ALGORITHMS.join(', ')}; got ${JSON.stringify(doc.algorithm)}`);
  }
  const tiers = new Map<string, Tier>();
  if (!isObject(doc.tiers) || Object.keys(doc.tiers).length === 0) {
    reasons.push('tiers must be an object with at least one tier');
  } else {
    for (const [name, def] of Object.entries(doc.tiers)) {
      const tier = parseTier(name, def, algorithm as Algorithm, windowSeconds as number, reasons);
      if (tier) tiers.set(name, tier);
    }
  }
  if (reasons.length > 0) return { ok: false, reasons };
  const lowestPriority = Math.min(...[...tiers.values()].map((t) => t.priority));
  return { ok: true, tiers: { windowSeconds: windowSeconds as number, algorithm: algorithm as Algorithm, tiers, lowestPriority } };
}

function parseTier(name: string, def: unknown, defaultAlgorithm: Algorithm, windowSeconds: number, reasons: string[]): Tier | null {
  const before = reasons.length;
  if (!TIER_NAME.test(name)) reasons.push(`tier name "${name}" must be 1-32 of [a-z0-9_-]`);
  if (!isObject(def)) {
    reasons.push(`tier "${name}" must be an object`);
    return null;
  }
  for (const k of Object.keys(def)) if (!TIER_FIELDS.has(k)) reasons.push(`tier "${name}": unknown field "${k}" (allowed: ${[...TIER_FIELDS].join(', ')})`);
  const { limit } = def;
  const burst = def.burst ?? limit;
  const degraded = def.degraded ?? limit;
  const critical = def.critical ?? degraded;
  const priority = def.priority ?? 0;
  const algorithm = def.algorithm ?? defaultAlgorithm;
  const limitOk = wholeNumber(limit, 1);
  if (!limitOk) reasons.push(`tier "${name}": limit must be a whole number of at least 1; got ${JSON.stringify(limit)}`);
  // burst, degraded and algorithm are judged only where the file sets them: a default
  // taken from a bad limit or a bad global algorithm is already one reason.
  if (def.burst !== undefined && !wholeNumber(burst, 1)) reasons.push(`tier "${name}": burst must be a whole number of at least 1; got ${JSON.stringify(def.burst)}`);
  else if (limitOk && wholeNumber(burst, 1) && burst < limit) reasons.push(`tier "${name}": burst (${burst}) must not be below limit (${limit})`);
  if (def.degraded !== undefined && !wholeNumber(degraded, 0)) reasons.push(`tier "${name}": degraded must be a whole number of at least 0; got ${JSON.stringify(def.degraded)}`);
  if (def.critical !== undefined && !wholeNumber(critical, 0)) reasons.push(`tier "${name}": critical must be a whole number of at least 0; got ${JSON.stringify(def.critical)}`);
  if (!Number.isInteger(priority) || Math.abs(priority as number) > MAX_PRIORITY) {
    reasons.push(`tier "${name}": priority must be a whole number -${MAX_PRIORITY}-${MAX_PRIORITY}; got ${JSON.stringify(def.priority)}`);
  }
  if (def.algorithm !== undefined && !ALGORITHMS.includes(algorithm as Algorithm)) {
    reasons.push(`tier "${name}": algorithm must be one of ${ALGORITHMS.join(', ')}; got ${JSON.stringify(def.algorithm)}`);
  }
  // The decision arithmetic multiplies counts by the window in ms; keep it exact in doubles.
  const biggest = Math.max(Number(limit) || 0, Number(burst) || 0, Number(degraded) || 0, Number(critical) || 0);
  if (biggest * windowSeconds * 1000 * 4 > Number.MAX_SAFE_INTEGER) {
    reasons.push(`tier "${name}": limits × windowSeconds too large to count exactly`);
  }
  const windows = def.windows === undefined ? [] : parseWindows(def.windows, `tier "${name}": `, reasons);
  const quota = def.quota === undefined ? null : parseQuota(def.quota, `tier "${name}": `, reasons);
  if (def.mode !== undefined && !MODES.includes(def.mode as string)) reasons.push(`tier "${name}": mode must be one of ${MODES.join(', ')}; got ${JSON.stringify(def.mode)}`);
  if (reasons.length > before || windows === null || quota === undefined) return null;
  const tier = {
    name, limit: limit as number, burst: burst as number, degraded: degraded as number,
    critical: critical as number, priority: priority as number, algorithm: algorithm as Algorithm, windows, quota,
  };
  return def.mode === undefined ? tier : { ...tier, mode: def.mode as 'enforce' | 'shadow' };
}

/** The shape `GET /admin/tiers` shows. */
export function tiersToJson(set: TierSet): Record<string, unknown> {
  const tiers: Record<string, unknown> = {};
  for (const t of set.tiers.values()) {
    tiers[t.name] = {
      limit: t.limit, burst: t.burst, degraded: t.degraded, critical: t.critical, priority: t.priority, algorithm: t.algorithm,
      ...(t.windows.length > 0 ? { windows: t.windows } : {}),
      ...(t.quota !== null ? { quota: quotaJson(t.quota) } : {}),
      ...(t.mode !== undefined ? { mode: t.mode } : {}),
    };
  }
  return { windowSeconds: set.windowSeconds, algorithm: set.algorithm, tiers };
}

export function quotaJson(q: QuotaLimit): Record<string, unknown> {
  return q.anchor === 'key' ? { limit: q.limit, period: q.period, anchor: 'key' } : { limit: q.limit, period: q.period };
}
