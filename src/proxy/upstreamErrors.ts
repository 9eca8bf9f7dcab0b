import type { ErrorCode } from '../errors';

/**
 * Upstream failure → client status (pure). A timeout is ours (we set it), so it is
 * known by flag rather than by the error, which Node reports as a reset.
 */
export function upstreamErrorCode(err: NodeJS.ErrnoException, timedOut: boolean): ErrorCode {
  if (timedOut || err.code === 'ETIMEDOUT' || err.code === 'ESOCKETTIMEDOUT') return 'gateway_timeout';
  return 'bad_gateway';
}
