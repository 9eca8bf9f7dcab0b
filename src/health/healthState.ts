import type { HealthStatus } from '../limit/policy';

export type HealthMode = 'manual' | 'auto' | 'shadow';
export type TransitionCause = 'auto' | 'override' | 'expiry';

/** A state pinned by an operator (`PUT /admin/health`), shared by every instance. */
export interface HealthOverride {
  readonly status: HealthStatus;
  /** ISO-8601: when it was set. */
  readonly since: string;
  /** ISO-8601, or null: pinned until `DELETE /admin/health/override`. */
  readonly until: string | null;
  readonly reason: string | null;
  /** The admin caller's address. */
  readonly by: string;
}

/** The state the signals call for (modes `auto` and `shadow`), decided once for the fleet. */
export interface AutomaticRecord {
  readonly status: HealthStatus;
  /** ISO-8601 */
  readonly since: string;
  readonly reasons: readonly string[];
  readonly signals: Readonly<Record<string, number>>;
  /** Set when NORMAL was reached from a worse state: the limits ramp back up from then. */
  readonly recovered: boolean;
  /** The decider's lease epoch: a stale decider never overwrites a newer decider's state. */
  readonly epoch: number;
}

export interface HealthRecord {
  readonly status: HealthStatus;
  /** ISO-8601 */
  readonly since: string;
}

type Listener = (to: HealthStatus, from: HealthStatus, cause: TransitionCause, reasons: readonly string[]) => void;

/**
 * The state in force on this instance, readable synchronously on the hot path:
 * an unexpired override, else (mode `auto`) the automatic state, else NORMAL. Mode `shadow`
 * keeps the automatic state for show only. `ramp` (0–1) is how far the limits have come
 * back after an automatic recovery.
 */
export class HealthState {
  private record: HealthRecord;
  private overrideRecord: HealthOverride | null = null;
  private overrideUntil = Infinity;
  private automaticRecord: AutomaticRecord | null = null;
  private rampValue = 1;
  private readonly listeners: Listener[] = [];

  constructor(readonly mode: HealthMode, now: Date) {
    this.record = { status: 'NORMAL', since: now.toISOString() };
  }

  get status(): HealthStatus {
    return this.record.status;
  }

  get current(): HealthRecord {
    return this.record;
  }

  get override(): HealthOverride | null {
    return this.overrideRecord;
  }

  get automatic(): AutomaticRecord | null {
    return this.automaticRecord;
  }

  get ramp(): number {
    return this.rampValue;
  }

  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  /** An override was set or removed (here, or on another instance). */
  setOverride(next: HealthOverride | null, now: number): void {
    if (sameOverride(next, this.overrideRecord)) return;
    this.overrideRecord = next;
    this.overrideUntil = next?.until ? Date.parse(next.until) : Infinity;
    this.settle(now, 'override', next?.reason ? [next.reason] : []);
  }

  setAutomatic(next: AutomaticRecord | null, now: number): void {
    const previous = this.automaticRecord;
    if (next !== null && previous !== null && next.epoch < previous.epoch) return;
    this.automaticRecord = next;
    this.settle(now, 'auto', next?.reasons ?? []);
  }

  /** Once a second or more: ends an expired override and advances the ramp. */
  tick(now: number, rampS: number): void {
    if (this.overrideRecord !== null && now >= this.overrideUntil) {
      this.overrideRecord = null;
      this.overrideUntil = Infinity;
      this.settle(now, 'expiry', ['override expired']);
    }
    this.rampValue = this.computeRamp(now, rampS);
  }

  private computeRamp(now: number, rampS: number): number {
    const a = this.automaticRecord;
    if (this.mode !== 'auto' || this.overrideRecord !== null || a === null || !a.recovered || a.status !== 'NORMAL' || rampS <= 0) return 1;
    return Math.min(1, Math.max(0, (now - Date.parse(a.since)) / (rampS * 1000)));
  }

  private inForce(now: number): { status: HealthStatus; since: string } {
    if (this.overrideRecord !== null && now < this.overrideUntil) return this.overrideRecord;
    if (this.mode === 'auto' && this.automaticRecord !== null) return this.automaticRecord;
    return { status: 'NORMAL', since: new Date(now).toISOString() };
  }

  private settle(now: number, cause: TransitionCause, reasons: readonly string[]): void {
    const next = this.inForce(now);
    const previous = this.record;
    if (next.status === previous.status) return;
    this.record = { status: next.status, since: next.since };
    for (const l of this.listeners) l(next.status, previous.status, cause, reasons);
  }
}

function sameOverride(a: HealthOverride | null, b: HealthOverride | null): boolean {
  if (a === null || b === null) return a === b;
  return a.status === b.status && a.since === b.since && a.until === b.until && a.reason === b.reason && a.by === b.by;
}
