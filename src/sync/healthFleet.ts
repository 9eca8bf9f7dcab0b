import type { SignalSample } from '../health/signals';

/**
 * How the instances of a fleet share what they see and agree on who decides the automatic
 * health state (SPEC §8): each publishes its signals every second; one holds a lease (a
 * Redis key with a TTL) and decides for all. Each new lease has a higher epoch, and the
 * automatic state is written only by the lease holder at its epoch (see Control.setAutomatic),
 * so a decider that paused past its lease cannot overwrite its successor's state.
 */
export interface HealthFleet {
  /** Publishes this instance's last second; answers every live instance's last second. */
  exchange(sample: SignalSample): Promise<readonly SignalSample[]>;
  /** Takes or keeps the decider lease: the lease's epoch, or null when another instance holds it. */
  lead(): Promise<number | null>;
  /** Gives the lease up (shutdown), so another instance takes over at once. */
  resign(): Promise<void>;
  readonly id: string;
}

/** One instance alone (memory store): it always decides, on its own signals. */
export class LocalHealthFleet implements HealthFleet {
  constructor(readonly id: string) {}

  exchange(sample: SignalSample): Promise<readonly SignalSample[]> {
    return Promise.resolve([sample]);
  }

  lead(): Promise<number | null> {
    return Promise.resolve(1);
  }

  resign(): Promise<void> {
    return Promise.resolve();
  }
}
