import pino, { type DestinationStream, type Logger } from 'pino';

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
 * (SonicBoom's buffer mode): an access-log batch is encoded once, then written as it is,
 * not measured, encoded and copied again on its way to fs.write as a string would be.
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

/**
 * Access-log lines gathered into batches before they reach the destination: one write (a
 * thread-pool round trip) per ~16 KiB of lines under load instead of one per line, which
 * measured ≈ 25 µs of CPU per request (docs/routes.md, "Measurements"). Appending a line is a
 * string concatenation (V8 keeps a rope: no copy); the batch is flattened and encoded once,
 * when it goes out, and the destination writes those bytes as they are. A batch goes out
 * when it is full, FLUSH_EVERY_MS after its first line, at shutdown (`flushLogs`) and on
 * exit; logs and audit lines are not batched, so they appear at once.
 */
class LineBatch {
  private text = '';
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly dest: AsyncDestination, private readonly maxChars: number, private readonly maxWaitMs: number) {}

  write(line: string): void {
    this.text += line;
    if (this.text.length >= this.maxChars) this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), this.maxWaitMs);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.text === '') return;
    const out = Buffer.from(this.text);
    this.text = '';
    this.dest.write(out);
  }
}

const BATCH_CHARS = 16384;
const FLUSH_EVERY_MS = 50;
let accessBatch: LineBatch | null = null;

/**
 * The access log's writer (SPEC §10): whole JSON lines, already built, onto the shared
 * asynchronous stdout destination in batches. Building the line is the caller's
 * (gateway/accessLog.ts); going through pino's serialisers and redaction would cost more
 * and add nothing, since the line never holds a key.
 */
export function accessLogWriter(): (line: string) => void {
  if (accessBatch === null) {
    const dest = stdoutDestination();
    const batch = new LineBatch(dest, BATCH_CHARS, FLUSH_EVERY_MS);
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
  const batch = accessBatch;
  return (line) => batch.write(line);
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
