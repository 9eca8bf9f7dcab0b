/**
 * Quota periods on the UTC calendar (SPEC §9), pure. The Redis script `PLAN_LUA` carries a
 * line-for-line port of `quotaPeriod`; the contract suite checks both at boundary instants.
 * Day numbers count days since 1970-01-01; the civil conversions are Howard Hinnant's
 * `days_from_civil` / `civil_from_days` (https://howardhinnant.github.io/date_algorithms.html),
 * integer arithmetic only, so Lua and JavaScript agree exactly.
 */

export type QuotaPeriodName = 'day' | 'month';

export const DAY_MS = 86_400_000;

/** A quota period: `id` is its first day's number, `startMs`/`endMs` its bounds (end exclusive). */
export interface QuotaPeriod {
  readonly id: number;
  readonly startMs: number;
  readonly endMs: number;
}

export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: month <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, month, day };
}

/** The day number of `anchor` (1–31) in the given month, clamped to the month's length. */
function anchoredDay(year: number, month: number, anchor: number): number {
  const first = daysFromCivil(year, month, 1);
  const next = month === 12 ? daysFromCivil(year + 1, 1, 1) : daysFromCivil(year, month + 1, 1);
  return first + Math.min(anchor, next - first) - 1;
}

/**
 * The period holding `nowMs`. `day`: 00:00 UTC to 00:00 UTC. `month`: from the `anchor`-th
 * day of a month (1 = calendar months; a key's creation day for `"anchor":"key"`, clamped
 * to the month's length: an anchor of 31 starts on Feb 28/29, Apr 30, …) to the next.
 */
export function quotaPeriod(period: QuotaPeriodName, anchor: number, nowMs: number): QuotaPeriod {
  const today = Math.floor(nowMs / DAY_MS);
  if (period === 'day') return { id: today, startMs: today * DAY_MS, endMs: (today + 1) * DAY_MS };
  const { year, month } = civilFromDays(today);
  let start = anchoredDay(year, month, anchor);
  let end: number;
  if (today >= start) {
    end = month === 12 ? anchoredDay(year + 1, 1, anchor) : anchoredDay(year, month + 1, anchor);
  } else {
    end = start;
    start = month === 1 ? anchoredDay(year - 1, 12, anchor) : anchoredDay(year, month - 1, anchor);
  }
  return { id: start, startMs: start * DAY_MS, endMs: end * DAY_MS };
}
