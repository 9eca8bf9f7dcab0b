import type { Outcome } from '../observability/metrics';
import { DEFAULT_ROUTE, type Route } from '../routes/routes';

/**
 * What the stages learn about one request, for the stages after them, the upstream's
 * headers and the access log line: one object per request, filled as it goes.
 */
export class RequestContext {
  ip = '';
  route: Route = DEFAULT_ROUTE;
  tier = 'none';
  keyId: string | null = null;
  identity: string | null = null;
  outcome: Outcome = 'allowed';
  /** Response head from the upstream, ms after it was asked; -1 when it was not asked. */
  upstreamMs = -1;
  /** The limits refused it, but shadow mode let it through (the policy that refused). */
  shadowRefused: string | null = null;
  /** Handed to the upstream (an upstream failure then counts as overload-class, SPEC §8). */
  proxied = false;
  /** Its access-log line is written (one per request, whatever ends it). */
  logged = false;

  constructor(readonly id: string, readonly started: number) {}
}
