import { severity, type HealthStatus } from '../limit/policy';
import type { Assessment } from './assess';

/**
 * The automatic NORMAL ⇄ DEGRADED ⇄ CRITICAL state (SPEC §8), a pure function of
 * (machine, one second's assessment, now). Worse states are entered fast: when the signals
 * called for it in `enterSeconds` of the last `enterWindowS` seconds. Better states are
 * reached slowly and one step at a time (CRITICAL → DEGRADED → NORMAL), each after the
 * signals stayed below the state for a whole dwell. Entering a worse state soon after
 * leaving it is a flap and doubles the dwell (up to `dwellMaxS`), so a fault that comes and
 * goes holds the state instead of making it oscillate — the hysteresis of Envoy's overload
 * manager and of Google SRE's "handling overload", with the back-off of TCP's RTO.
 */
export interface MachineSettings {
  readonly enterWindowS: number;
  readonly enterSeconds: number;
  readonly dwellS: number;
  readonly dwellMaxS: number;
  /** Re-entering a worse state within this long of leaving one counts as a flap. */
  readonly flapWindowS: number;
  /** After a return to NORMAL, the tiers' limits come back from `degraded` to `burst` over this long. */
  readonly rampS: number;
}

export interface Machine {
  readonly status: HealthStatus;
  /** Epoch ms the status began. */
  readonly since: number;
  readonly reasons: readonly string[];
  /** The last assessments, oldest first, at most `enterWindowS`. */
  readonly history: readonly HealthStatus[];
  /** Epoch ms since which the signals continuously called for a better state; null when they did not. */
  readonly quietSince: number | null;
  readonly dwellMs: number;
  /** Epoch ms of the last step to a better state; null if none yet. */
  readonly improvedAt: number | null;
}

export interface Transition {
  readonly from: HealthStatus;
  readonly to: HealthStatus;
  readonly reasons: readonly string[];
}

export function initialMachine(now: number, s: MachineSettings, status: HealthStatus = 'NORMAL', since = now): Machine {
  return { status, since, reasons: [], history: [], quietSince: null, dwellMs: s.dwellS * 1000, improvedAt: null };
}

function better(status: HealthStatus): HealthStatus {
  return status === 'CRITICAL' ? 'DEGRADED' : 'NORMAL';
}

export function step(m: Machine, a: Assessment, now: number, s: MachineSettings): { machine: Machine; transition: Transition | null } {
  const history = [...m.history, a.status].slice(-s.enterWindowS);
  const atLeast = (level: number) => history.reduce((n, h) => n + (severity(h) >= level ? 1 : 0), 0);
  const current = severity(m.status);

  let worse: HealthStatus | null = null;
  if (current < 2 && atLeast(2) >= s.enterSeconds) worse = 'CRITICAL';
  else if (current < 1 && atLeast(1) >= s.enterSeconds) worse = 'DEGRADED';
  if (worse !== null) {
    const flapped = m.improvedAt !== null && now - m.improvedAt < s.flapWindowS * 1000;
    const dwellMs = flapped ? Math.min(m.dwellMs * 2, s.dwellMaxS * 1000) : m.dwellMs;
    return {
      machine: { status: worse, since: now, reasons: a.reasons, history, quietSince: null, dwellMs, improvedAt: m.improvedAt },
      transition: { from: m.status, to: worse, reasons: a.reasons },
    };
  }

  if (severity(a.status) >= current || current === 0) {
    // Still called for (or NORMAL): no dwell runs. A long calm NORMAL forgets old flaps.
    const calm = current === 0 && m.improvedAt !== null && now - m.improvedAt >= s.flapWindowS * 1000;
    const reasons = current === 0 ? [] : a.status === m.status ? a.reasons : m.reasons;
    return { machine: { ...m, history, quietSince: null, reasons, dwellMs: calm ? s.dwellS * 1000 : m.dwellMs }, transition: null };
  }

  const quietSince = m.quietSince ?? now;
  if (now - quietSince < m.dwellMs) return { machine: { ...m, history, quietSince }, transition: null };
  const to = better(m.status);
  const reasons = [`signals below ${m.status} for ${Math.round((now - quietSince) / 1000)} s`];
  return {
    // The next step down needs a dwell of its own.
    machine: { status: to, since: now, reasons, history, quietSince: now, dwellMs: m.dwellMs, improvedAt: now },
    transition: { from: m.status, to, reasons },
  };
}

/**
 * 0–1: how far the tiers' limits have come back after a return to NORMAL (1 when not
 * recovering), so that shed clients come back gradually rather than all in one second.
 */
export function rampOf(status: HealthStatus, since: number, recovered: boolean, now: number, rampS: number): number {
  if (status !== 'NORMAL' || !recovered || rampS <= 0) return 1;
  return Math.min(1, Math.max(0, (now - since) / (rampS * 1000)));
}
