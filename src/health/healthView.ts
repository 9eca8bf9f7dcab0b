import type { HealthStatus } from '../limit/policy';
import type { HealthMode, HealthOverride, HealthState } from './healthState';

/** `GET /admin/health` (SPEC §8). */
export interface HealthView {
  readonly status: HealthStatus;
  readonly since: string;
  readonly mode: HealthMode;
  readonly override: { status: HealthStatus; until: string | null; reason: string | null; by: string } | null;
  readonly automatic: { status: HealthStatus; since: string; reasons: readonly string[]; signals: Readonly<Record<string, number>> } | null;
}

function overrideView(o: HealthOverride | null): HealthView['override'] {
  return o === null ? null : { status: o.status, until: o.until, reason: o.reason, by: o.by };
}

export function healthView(h: HealthState): HealthView {
  const a = h.automatic;
  return {
    status: h.current.status,
    since: h.current.since,
    mode: h.mode,
    override: overrideView(h.override),
    automatic: h.mode === 'manual' ? null : a === null
      ? { status: 'NORMAL', since: h.current.since, reasons: [], signals: {} }
      : { status: a.status, since: a.since, reasons: a.reasons, signals: a.signals },
  };
}
