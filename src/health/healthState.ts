import type { HealthStatus } from '../limit/policy';

export interface HealthRecord {
  readonly status: HealthStatus;
  /** ISO-8601 */
  readonly since: string;
}

/**
 * The health state in force on this instance, readable synchronously on the hot path.
 * `apply` takes records from the store (pub/sub or the periodic re-read); only a
 * different status counts as a change.
 */
export class HealthState {
  private record: HealthRecord;
  private readonly listeners: Array<(r: HealthRecord, previous: HealthRecord) => void> = [];

  constructor(now: Date) {
    this.record = { status: 'NORMAL', since: now.toISOString() };
  }

  get status(): HealthStatus {
    return this.record.status;
  }

  get current(): HealthRecord {
    return this.record;
  }

  onChange(listener: (r: HealthRecord, previous: HealthRecord) => void): void {
    this.listeners.push(listener);
  }

  apply(next: HealthRecord | null): boolean {
    if (next === null || (next.status === this.record.status && next.since === this.record.since)) return false;
    const previous = this.record;
    this.record = next;
    if (next.status !== previous.status) for (const l of this.listeners) l(next, previous);
    return next.status !== previous.status;
  }
}
