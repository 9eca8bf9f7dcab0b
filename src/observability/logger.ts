import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** What pino's asynchronous destination (SonicBoom 4) offers beyond a stream. */
interface AsyncDestination extends DestinationStream {
  flush(cb: (err?: Error) => void): void;
}

/**
 * Lines are written once this many bytes are queued, or every FLUSH_EVERY_MS: one write
 * syscall (through libuv's thread pool) per ~25 access-log lines under load instead of one
 * per line, which measured ≈ 25 µs of CPU per request (docs/routes.md, "Measurements").
 */
const BATCH_BYTES = 8192;
const FLUSH_EVERY_MS = 100;
const FLUSH_WAIT_MS = 2000;

let stdout: AsyncDestination | null = null;

/**
 * Stdout for every line of the process (logs, audit, access log), through one asynchronous
 * destination: a line is queued and written off the request path in batches, and sharing
 * one destination keeps every line whole (two writers on one pipe could interleave a
 * partial write). pino flushes it synchronously on exit; `flushLogs` is the orderly way, at
 * shutdown. A SIGKILL loses at most the last FLUSH_EVERY_MS of lines.
 */
function stdoutDestination(): AsyncDestination {
  stdout ??= pino.destination({ dest: 1, sync: false, minLength: BATCH_BYTES, periodicFlush: FLUSH_EVERY_MS }) as unknown as AsyncDestination;
  return stdout;
}

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
  }, stdoutDestination());
}

/** One audit line (SPEC §6): `"audit":true` and a stable `event` name. */
export function audit(log: Logger, event: string, fields: Record<string, unknown>): void {
  log.info({ audit: true, event, ...fields }, event);
}

/**
 * The access log's writer (SPEC §10): whole JSON lines, already built, onto the shared
 * asynchronous stdout destination. Building the line is the caller's (gateway/accessLog.ts);
 * going through pino's serialisers and redaction would cost more and add nothing, since the
 * line never holds a key.
 */
export function accessLogWriter(): (line: string) => void {
  const dest = stdoutDestination();
  return (line) => { dest.write(line); };
}

/**
 * Resolves once every line queued so far is written (shutdown, before exit), or after 2 s
 * (a stalled reader of stdout; pino's exit hook then writes the rest synchronously).
 */
export function flushLogs(): Promise<void> {
  const dest = stdout;
  if (dest === null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, FLUSH_WAIT_MS);
    try {
      dest.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}
