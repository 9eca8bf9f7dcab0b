import type { Tier } from './tiers';

export type HealthStatus = 'NORMAL' | 'DEGRADED' | 'CRITICAL';
/** Best to worst. */
export const HEALTH_STATUSES: readonly HealthStatus[] = ['NORMAL', 'DEGRADED', 'CRITICAL'];

/** How bad a state is: NORMAL 0, DEGRADED 1, CRITICAL 2. */
export function severity(status: HealthStatus): number {
  return status === 'NORMAL' ? 0 : status === 'DEGRADED' ? 1 : 2;
}

/**
 * NORMAL lets users burst; DEGRADED holds each tier to its `degraded` figure, CRITICAL to its
 * `critical` one (SPEC §2, §8). `ramp` (0–1, 1 when not recovering) brings a tier back from
 * DEGRADED to its burst gradually after a recovery, so that every shed client does not return
 * in the same second.
 */
export function effectiveLimit(tier: Tier, health: HealthStatus, ramp = 1): number {
  if (health === 'CRITICAL') return tier.critical;
  if (health === 'DEGRADED') return tier.degraded;
  if (ramp >= 1 || tier.burst <= tier.degraded) return tier.burst;
  return tier.degraded + Math.floor((tier.burst - tier.degraded) * ramp);
}
