import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** What pino's asynchronous destination (SonicBoom 4) offers beyond a stream. */
interface AsyncDestination extends DestinationStream {
  flushSync(): void;
  once(event: 'drain', fn: () => void): void;
  off(event: 'drain', fn: () => void): void;
  /** A write is in flight; 'drain' follows once everything queued is written. */
  readonly _writing: boolean;
}

const FLUSH_WAIT_MS = 2000;

let stdout: AsyncDestination | null = null;

/**
 * Stdout for every line of the process (logs, audit, access log), through one asynchronous
 * destination: a line is queued and written off the request path, lines written while a
 * write is in flight go together in the next one, and sharing one destination keeps every
 * line whole (two writers on one pipe could interleave a partial write). What is still
 * queued is written synchronously on exit; `flushLogs` is the orderly way, at shutdown.
 */
function stdoutDestination(): AsyncDestination {
  if (stdout === null) {
    const dest = pino.destination({ dest: 1, sync: false }) as unknown as AsyncDestination;
    process.on('exit', () => {
      try {
        dest.flushSync();
      } catch {
        // Nothing more can be done for stdout at exit.
      }
    });
    stdout = dest;
  }
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
 * (a stalled reader of stdout; the exit hook then writes the rest synchronously).
 * SonicBoom's own flush(cb) answers at once when it batches nothing (minLength 0), so the
 * wait is for its 'drain', which follows the last write of a busy spell.
 */
export function flushLogs(): Promise<void> {
  const dest = stdout;
  if (dest === null || !dest._writing) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      dest.off('drain', done);
      resolve();
    };
    const timer = setTimeout(done, FLUSH_WAIT_MS);
    dest.once('drain', done);
  });
}
