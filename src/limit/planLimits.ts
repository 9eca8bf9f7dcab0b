/**
 * The plan fields of SPEC §9 (`windows`, `quota`) and a key's `limits`, validated the same
 * way in tiers.json and on the admin API (pure; every reason collected).
 */
import type { QuotaLimit, WindowLimit } from './plan';

export const MAX_WINDOW_S = 86_400;
export const MAX_WINDOWS = 8;
/** Counts stay exact in doubles (the arithmetic multiplies counts by a window in ms). */
const MAX_COUNT = 1_000_000_000_000;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function wholeNumber(v: unknown, min: number): v is number {
  return Number.isInteger(v) && (v as number) >= min;
}

/** `windows`: [{limit ≥ 1, windowSeconds 1–86400}], distinct lengths, at most 8. */
export function parseWindows(v: unknown, where: string, reasons: string[]): WindowLimit[] | null {
  if (!Array.isArray(v)) {
    reasons.push(`${where}windows must be an array of {"limit","windowSeconds"}; got ${JSON.stringify(v)}`);
    return null;
  }
  if (v.length > MAX_WINDOWS) reasons.push(`${where}windows may hold at most ${MAX_WINDOWS} windows; got ${v.length}`);
  const before = reasons.length;
  const out: WindowLimit[] = [];
  const seen = new Set<number>();
  v.forEach((w: unknown, i) => {
    const at = `${where}windows[${i}]`;
    if (!isObject(w)) {
      reasons.push(`${at} must be an object {"limit","windowSeconds"}`);
      return;
    }
    for (const k of Object.keys(w)) if (k !== 'limit' && k !== 'windowSeconds') reasons.push(`${at}: unknown field "${k}" (allowed: limit, windowSeconds)`);
    if (!wholeNumber(w.limit, 1) || w.limit > MAX_COUNT) reasons.push(`${at}.limit must be a whole number of at least 1; got ${JSON.stringify(w.limit)}`);
    if (!wholeNumber(w.windowSeconds, 1) || w.windowSeconds > MAX_WINDOW_S) {
      reasons.push(`${at}.windowSeconds must be a whole number 1-${MAX_WINDOW_S}; got ${JSON.stringify(w.windowSeconds)}`);
    } else if (seen.has(w.windowSeconds)) {
      reasons.push(`${at}.windowSeconds ${w.windowSeconds} appears twice (one limit per window length)`);
    } else {
      seen.add(w.windowSeconds);
    }
    if (wholeNumber(w.limit, 1) && wholeNumber(w.windowSeconds, 1) && w.limit * w.windowSeconds * 1000 * 4 > Number.MAX_SAFE_INTEGER) {
      reasons.push(`${at}: limit × windowSeconds too large to count exactly`);
    }
    out.push({ limit: w.limit as number, windowSeconds: w.windowSeconds as number });
  });
  return reasons.length > before ? null : out;
}

/** `quota`: {limit ≥ 1, period day|month, anchor "key" (month only)} or null (none). */
export function parseQuota(v: unknown, where: string, reasons: string[]): QuotaLimit | null | undefined {
  if (v === null) return null;
  const before = reasons.length;
  if (!isObject(v)) {
    reasons.push(`${where}quota must be an object {"limit","period"[,"anchor":"key"]} or null; got ${JSON.stringify(v)}`);
    return undefined;
  }
  for (const k of Object.keys(v)) if (!['limit', 'period', 'anchor'].includes(k)) reasons.push(`${where}quota: unknown field "${k}" (allowed: limit, period, anchor)`);
  if (!wholeNumber(v.limit, 1) || v.limit > MAX_COUNT) reasons.push(`${where}quota.limit must be a whole number 1-${MAX_COUNT}; got ${JSON.stringify(v.limit)}`);
  if (v.period !== 'day' && v.period !== 'month') reasons.push(`${where}quota.period must be "day" or "month"; got ${JSON.stringify(v.period)}`);
  if (v.anchor !== undefined && v.anchor !== 'key') reasons.push(`${where}quota.anchor must be "key" (or left out for the calendar); got ${JSON.stringify(v.anchor)}`);
  else if (v.anchor === 'key' && v.period === 'day') reasons.push(`${where}quota.anchor "key" applies to a monthly quota only`);
  if (reasons.length > before) return undefined;
  return { limit: v.limit as number, period: v.period as 'day' | 'month', anchor: v.anchor === 'key' ? 'key' : null };
}

/** A key's `limits` (SPEC §9): any of these replace its tier's values for that key only. */
export interface KeyLimits {
  readonly limit?: number;
  readonly burst?: number;
  readonly degraded?: number;
  readonly critical?: number;
  readonly windows?: readonly WindowLimit[];
  readonly quota?: QuotaLimit | null;
}

const KEY_LIMIT_FIELDS = ['limit', 'burst', 'degraded', 'critical', 'windows', 'quota'];

export function parseKeyLimits(v: unknown): { ok: true; limits: KeyLimits } | { ok: false; reasons: string[] } {
  const reasons: string[] = [];
  if (!isObject(v)) return { ok: false, reasons: [`limits must be an object with any of ${KEY_LIMIT_FIELDS.join(', ')}, or null`] };
  for (const k of Object.keys(v)) if (!KEY_LIMIT_FIELDS.includes(k)) reasons.push(`limits: unknown field "${k}" (allowed: ${KEY_LIMIT_FIELDS.join(', ')})`);
  const out: { -readonly [K in keyof KeyLimits]: KeyLimits[K] } = {};
  for (const [field, min] of [['limit', 1], ['burst', 1], ['degraded', 0], ['critical', 0]] as const) {
    const x = v[field];
    if (x === undefined) continue;
    if (!wholeNumber(x, min) || x > MAX_COUNT) reasons.push(`limits.${field} must be a whole number of at least ${min}; got ${JSON.stringify(x)}`);
    else out[field] = x;
  }
  if (out.limit !== undefined && out.burst !== undefined && out.burst < out.limit) reasons.push(`limits.burst (${out.burst}) must not be below limits.limit (${out.limit})`);
  if (v.windows !== undefined) {
    const w = parseWindows(v.windows, 'limits.', reasons);
    if (w !== null) out.windows = w;
  }
  if (v.quota !== undefined) {
    const q = parseQuota(v.quota, 'limits.', reasons);
    if (q !== undefined) out.quota = q;
  }
  return reasons.length > 0 ? { ok: false, reasons } : { ok: true, limits: out };
}

/** A key's `limits` as the admin API shows them (a calendar quota has no `anchor`). */
export function keyLimitsJson(l: KeyLimits): Record<string, unknown> {
  if (l.quota === undefined || l.quota === null || l.quota.anchor === 'key') return { ...l };
  return { ...l, quota: { limit: l.quota.limit, period: l.quota.period } };
}
