import type { Tier } from './tiers';

export type HealthStatus = 'NORMAL' | 'DEGRADED';
export const HEALTH_STATUSES: readonly HealthStatus[] = ['NORMAL', 'DEGRADED'];

/** NORMAL lets users burst; DEGRADED holds each tier to its `degraded` figure (SPEC §2). */
export function effectiveLimit(tier: Tier, health: HealthStatus): number {
  return health === 'NORMAL' ? tier.burst : tier.degraded;
}
