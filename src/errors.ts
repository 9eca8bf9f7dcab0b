/**
 * The one error type of tollgate. Clients match on `code` (the `error` field of every
 * JSON error body), never on the message or on `instanceof` (jest runs modules in
 * separate realms, where `instanceof` can lie — see undici's guidance on `error.code`).
 */
export const ERROR_CODES = {
  missing_api_key: { status: 401, message: 'Send your API key in the configured header.' },
  invalid_api_key: { status: 401, message: 'The API key is malformed, unknown or disabled.' },
  ip_blocked: { status: 403, message: 'Too many invalid API keys from this address; try again later.' },
  rate_limited: { status: 429, message: 'Rate limit exceeded; retry after the number of seconds in Retry-After.' },
  key_expired: { status: 401, message: 'The API key has expired.' },
  tier_not_allowed: { status: 403, message: 'Your tier may not use this route.' },
  quota_exceeded: { status: 429, message: 'Quota for this period used up; retry after the number of seconds in Retry-After.' },
  overloaded: { status: 503, message: 'The service is overloaded; retry after the number of seconds in Retry-After.' },
  store_unavailable: { status: 503, message: 'The rate-limit store is unavailable; try again shortly.' },
  bad_gateway: { status: 502, message: 'The upstream refused or reset the connection.' },
  gateway_timeout: { status: 504, message: 'The upstream did not answer in time.' },
  invalid_request: { status: 400, message: 'The request is malformed or invalid.' },
  unauthorized: { status: 401, message: 'A valid admin bearer token is required.' },
  not_found: { status: 404, message: 'No such resource.' },
  method_not_allowed: { status: 405, message: 'Method not allowed on this resource.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  internal_error: { status: 500, message: 'Internal error.' },
  invalid_config: { status: 500, message: 'A setting is invalid.' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra fields merged into the JSON body (e.g. `retryAfter`, `tier`, `reasons`). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, cause?: unknown) {
    super(message ?? ERROR_CODES[code].message, cause === undefined ? undefined : { cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.details = details;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'GatewayError'
    && typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code in ERROR_CODES;
}

/** What an error response needs; a GatewayError is one, and so is a cheap `reply(...)`. */
export interface ErrorReply {
  readonly code: ErrorCode;
  readonly status: number;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>> | undefined;
}

/** An ErrorReply without an Error's stack capture, for the hot 401/403/429 paths. */
export function reply(code: ErrorCode, details?: Record<string, unknown>): ErrorReply {
  const e = ERROR_CODES[code];
  return { code, status: e.status, message: e.message, details };
}

/**
 * The JSON body every error response carries: `error` (stable code), `message`, details,
 * and on the proxy port the request's `requestId` (SPEC §10).
 */
export function errorBody(err: ErrorReply, requestId?: string): string {
  return JSON.stringify(requestId === undefined
    ? { error: err.code, message: err.message, ...err.details }
    : { error: err.code, message: err.message, ...err.details, requestId });
}
