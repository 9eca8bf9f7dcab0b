import pino, { type DestinationStream, type Logger } from 'pino';
import { JsonLineBatch } from './jsonLineBatch';

export type { Logger };

/** What pino's asynchronous destination (SonicBoom 4, in buffer mode) offers beyond a stream. */
interface AsyncDestination {
  write(chunk: Buffer): boolean;
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
 * destination: a line is queued and written off the request path, lines queued while a
 * write is in flight go together in the next one, and sharing one destination keeps every
 * line whole (two writers on one pipe could interleave a partial write). It takes bytes
 * (SonicBoom's buffer mode): an access-log batch, already bytes, is written as it is, not
 * measured, encoded and copied on its way to fs.write as a string would be.
 */
function stdoutDestination(): AsyncDestination {
  stdout ??= pino.destination({ dest: 1, sync: false, contentMode: 'buffer' }) as unknown as AsyncDestination;
  return stdout;
}

/** pino writes strings; the shared destination takes bytes. Logs and audit lines are few. */
function pinoStream(dest: AsyncDestination): DestinationStream & { flushSync(): void } {
  return {
    write: (line: string) => dest.write(Buffer.from(line)),
    flushSync: () => dest.flushSync(),
  };
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
  }, pinoStream(stdoutDestination()));
}

/** One audit line (SPEC §6): `"audit":true` and a stable `event` name. */
export function audit(log: Logger, event: string, fields: Record<string, unknown>): void {
  log.info({ audit: true, event, ...fields }, event);
}

const BATCH_BYTES = 65536;
const SLAB_BYTES = 4 * BATCH_BYTES;
const FLUSH_EVERY_MS = 50;
let accessBatch: JsonLineBatch | null = null;

/**
 * The access log's batch (SPEC §10): whole JSON lines written as bytes (gateway/accessLog.ts),
 * onto the shared asynchronous stdout destination in batches of ~64 KiB: one write (a
 * thread-pool round trip) per batch under load instead of one per line, which measured
 * ≈ 25 µs of CPU per request (docs/routes.md, "Measurements"). A round trip wakes a pool
 * thread and then the event loop: at 16 KiB batches (≈ 58 lines) the wake-ups and context
 * switches still measured ≈ 0.75 µs per line in a perf profile of the gateway under load.
 * A batch also goes out FLUSH_EVERY_MS after its first line, at shutdown (`flushLogs`) and
 * on exit; logs and audit lines are not batched, so they appear at once. Going through
 * pino's serialisers and redaction would cost more and add nothing, since the line never
 * holds a key.
 */
export function accessLogBatch(): JsonLineBatch {
  if (accessBatch === null) {
    const dest = stdoutDestination();
    const batch = new JsonLineBatch((bytes) => dest.write(bytes), BATCH_BYTES, FLUSH_EVERY_MS, SLAB_BYTES);
    // Whatever a batch still holds at exit goes out synchronously (pino's own exit hook
    // may already have run, so this one flushes the destination again after it).
    process.on('exit', () => {
      try {
        batch.flush();
        dest.flushSync();
      } catch {
        // Nothing more can be done for stdout at exit.
      }
    });
    accessBatch = batch;
  }
  return accessBatch;
}

/**
 * Resolves once every line queued so far is written (shutdown, before exit), or after 2 s
 * (a stalled reader of stdout; the exit hooks then write the rest synchronously).
 * SonicBoom's own flush(cb) answers at once when it batches nothing (minLength 0), so the
 * wait is for its 'drain', which follows the last write of a busy spell.
 */
export function flushLogs(): Promise<void> {
  accessBatch?.flush();
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
