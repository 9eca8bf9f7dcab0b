import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout. The API-key header and Authorization are redacted wherever
 * they appear in a logged request, so a key never reaches the logs.
 */
export function createLogger(level: string, apiKeyHeader: string): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        `req.headers["${apiKeyHeader}"]`,
        'req.headers.authorization',
        `headers["${apiKeyHeader}"]`,
        'headers.authorization',
        'key',
        'apiKey',
      ],
      censor: '[redacted]',
    },
  });
}

/** One audit line (SPEC §6): `"audit":true` and a stable `event` name. */
export function audit(log: Logger, event: string, fields: Record<string, unknown>): void {
  log.info({ audit: true, event, ...fields }, event);
}
