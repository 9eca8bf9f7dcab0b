import type { ErrorCode } from '../errors';

/**
 * Error codes that mean the upstream did not answer in time: undici's own timeouts (no
 * response head, a silent body, no connection) and ETIMEDOUT (ours on a WebSocket's
 * upstream request, or the kernel's on a connect).
 */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** Upstream failure → client status (pure): a timeout is a 504, anything else a 502. */
export function upstreamErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  return err.code !== undefined && TIMEOUT_CODES.has(err.code) ? 'gateway_timeout' : 'bad_gateway';
}
