import { reply, type ErrorReply } from '../errors';
import type { LimitMode, Route } from '../routes/routes';

/*
 * The route's part of the request path (SPEC §10), pure: which tiers it admits and whether
 * its limits are enforced or only watched. The route itself is found by the compiled
 * matcher (routes/matcher.ts) before the key stage, since `auth` decides whether a key is
 * needed at all.
 */

const TIER_NOT_ALLOWED = reply('tier_not_allowed');

/** 403 tier_not_allowed when the route names its tiers and this is not one; else null. */
export function tierGate(route: Route, tier: string): ErrorReply | null {
  return route.tiers === null || route.tiers.has(tier) ? null : TIER_NOT_ALLOWED;
}

/**
 * Enforce or shadow: the route's `mode`, else the tier's, else LIMIT_MODE. A route set to
 * `enforce` enforces even under LIMIT_MODE=shadow, so a rollout can turn routes on one by one.
 */
export function limitModeOf(route: Route, tierMode: LimitMode | null | undefined, global: LimitMode): LimitMode {
  return route.mode ?? tierMode ?? global;
}

/** The subject an anonymous request (auth `optional`, no key) is counted as: its client IP. */
export function anonymousSubject(ip: string): string {
  return `ip:${ip}`;
}

export const ANONYMOUS_TIER = 'anonymous';
