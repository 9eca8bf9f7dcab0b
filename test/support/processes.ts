import { spawn, type ChildProcess } from 'node:child_process';
import vm from 'node:vm';

// Jest hands each test file a deep copy of `process` with its own listener table
// (jest-util createProcessObject), so `process.on('exit')` inside a test never fires
// when jest exits. runInThisContext evaluates in the host realm and returns the real one.
const hostProcess = vm.runInThisContext('process') as NodeJS.Process;

// One registry per OS process, not per test file: jest gives every test file a fresh
// module registry, so a module-level Set would be one of many and each would add
// another 'exit' listener.
const REGISTRY_KEY = Symbol.for('tollgate.test.children');
type RegistryHolder = { [REGISTRY_KEY]?: Set<ChildProcess> };

function registry(): Set<ChildProcess> {
  const holder = hostProcess as unknown as RegistryHolder;
  const existing = holder[REGISTRY_KEY];
  if (existing !== undefined) return existing;
  const children = new Set<ChildProcess>();
  holder[REGISTRY_KEY] = children;
  // The listener outlives the test file that registered it, when jest has already torn its
  // module registry down: it must not require() anything, only use what it closes over.
  hostProcess.on('exit', () => killSet(children));
  return children;
}

function killSet(children: Set<ChildProcess>): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // Already gone between the check and the kill.
      }
    }
  }
  children.clear();
}

/** SIGKILLs every child the harness spawned that is still alive. Runs on process exit. */
export function killAllChildren(): void {
  killSet(registry());
}

registry();

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const TIMED_OUT = Symbol('timed out');
const ABORTED = Symbol('aborted');
const NEVER = new Promise<never>(() => undefined);

/**
 * Resolves with the promise's value, with TIMED_OUT after `ms`, or with ABORTED when `abort`
 * settles first; never leaves a timer behind.
 */
async function within<T>(
  promise: Promise<T>,
  ms: number,
  abort: Promise<unknown> = NEVER,
): Promise<T | typeof TIMED_OUT | typeof ABORTED> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout, abort.then((): typeof ABORTED => ABORTED)]);
  } finally {
    clearTimeout(timer);
  }
}

function settled<T>(outcome: T | typeof TIMED_OUT | typeof ABORTED): outcome is T {
  return outcome !== TIMED_OUT && outcome !== ABORTED;
}

class PollAborted extends Error {}

async function poll<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs: number,
  intervalMs: number,
  abort: Promise<unknown> = NEVER,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    // A probe that hangs (a paused Redis, a listener that never answers) must not make the
    // wait unbounded, nor outlast the process it is waiting for.
    const attempt = fn().then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    const outcome = await within(attempt, deadline - Date.now(), abort);
    if (outcome === ABORTED) throw new PollAborted(what);
    if (outcome !== TIMED_OUT) {
      if ('error' in outcome) lastError = outcome.error;
      else if (outcome.value !== undefined && outcome.value !== false) return outcome.value;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      // The message is part of the harness API; the last probe failure goes in `cause`.
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    if ((await within(sleep(Math.min(intervalMs, left)), left, abort)) === ABORTED) throw new PollAborted(what);
  }
}

/**
 * Calls `fn` every `intervalMs` until it returns something other than undefined/false.
 * A throwing `fn` counts as "not yet" (e.g. ECONNREFUSED while a server starts).
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 10000,
  intervalMs = 50,
): Promise<T> {
  return poll(what, fn, timeoutMs, intervalMs);
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TrackedChild {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Resolves when the process has exited (its stdio may still be draining). Never rejects. */
  readonly exited: Promise<ExitInfo>;
  alive(): boolean;
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Sends a signal if the process is still alive. */
  signal(signal: NodeJS.Signals): void;
  /** Sends `signal`, waits up to `timeoutMs`, then SIGKILLs. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitInfo>;
  /** Waits (bounded) until stdout and stderr are closed, so output() is complete. */
  drained(timeoutMs?: number): Promise<void>;
}

export interface SpawnTrackedOptions {
  cwd?: string;
  /** The child's whole environment; defaults to this process's. */
  env?: NodeJS.ProcessEnv;
}

// Gateways under load log a line per request; keep the tail so memory stays bounded.
const MAX_OUTPUT_CHARS = 32 * 1024 * 1024;

class OutputBuffer {
  private chunks: string[] = [];
  private size = 0;
  private dropped = 0;

  append(text: string): void {
    this.chunks.push(text);
    this.size += text.length;
    while (this.size > MAX_OUTPUT_CHARS && this.chunks.length > 1) {
      const first = this.chunks.shift() ?? '';
      this.size -= first.length;
      this.dropped += first.length;
    }
  }

  text(): string {
    const joined = this.chunks.join('');
    this.chunks = [joined];
    return this.dropped > 0 ? `[... ${this.dropped} chars dropped ...]\n${joined}` : joined;
  }
}

function unrefStream(stream: unknown): void {
  const candidate = stream as { unref?: () => void } | null;
  if (candidate !== null && typeof candidate.unref === 'function') candidate.unref();
}

/** Spawns a process, registers it for killAllChildren, and captures its output. */
export async function spawnTracked(
  name: string,
  command: string,
  args: readonly string[],
  opts: SpawnTrackedOptions = {},
): Promise<TrackedChild> {
  const child = spawn(command, [...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  const combined = new OutputBuffer();
  const out = new OutputBuffer();
  const err = new OutputBuffer();
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    combined.append(text);
    out.append(text);
  });
  child.stderr.on('data', (text: string) => {
    combined.append(text);
    err.append(text);
  });

  let exitInfo: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      registry().delete(child);
      resolve(exitInfo);
    });
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));

  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (error) => resolve(error));
  });
  if (spawned !== undefined) {
    throw new Error(`could not start ${name} (${command}): ${spawned.message}`, { cause: spawned });
  }
  // Later errors (a failed kill) must not crash the test process.
  child.on('error', (error) => combined.append(`\n[harness] ${name}: ${error.message}\n`));
  registry().add(child);

  // A child a test forgot to stop must not keep jest alive; the exit hook kills it.
  child.unref();
  unrefStream(child.stdout);
  unrefStream(child.stderr);

  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} spawned without a pid`);

  const tracked: TrackedChild = {
    name,
    pid,
    process: child,
    exited,
    alive: () => exitInfo === undefined,
    output: () => combined.text(),
    stdout: () => out.text(),
    stderr: () => err.text(),
    signal(signal) {
      if (exitInfo !== undefined) return;
      try {
        child.kill(signal);
      } catch {
        // Exited between the check and the kill.
      }
    },
    async stop(signal = 'SIGTERM', timeoutMs = 5000) {
      if (exitInfo !== undefined) return exitInfo;
      tracked.signal(signal);
      // A SIGSTOPped process only acts on the signal once it runs again.
      if (signal !== 'SIGKILL') tracked.signal('SIGCONT');
      const graceful = await within(exited, timeoutMs);
      if (settled(graceful)) return graceful;
      tracked.signal('SIGKILL');
      const killed = await within(exited, 5000);
      if (!settled(killed)) throw new Error(`${name} (pid ${pid}) did not exit even after SIGKILL`);
      return killed;
    },
    async drained(timeoutMs = 1000) {
      await within(closed, timeoutMs);
    },
  };
  return tracked;
}

export function describeExit(info: ExitInfo): string {
  return info.signal !== null ? `signal ${info.signal}` : `code ${String(info.code)}`;
}

/**
 * waitFor that gives up at once, with the child's output in the error, if the child exits.
 * The error's `code` is 'CHILD_EXITED' in that case.
 */
export async function waitForAlive<T>(
  child: TrackedChild,
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 10000,
  intervalMs = 50,
): Promise<T> {
  try {
    return await poll(what, fn, timeoutMs, intervalMs, child.exited);
  } catch (error) {
    if (child.alive()) throw error;
    const info = await child.exited;
    await child.drained(500);
    throw Object.assign(
      new Error(`${child.name} exited (${describeExit(info)}) while waiting for ${what}\n--- output ---\n${child.output()}`),
      { code: 'CHILD_EXITED' },
    );
  }
}

export interface RunResult extends ExitInfo {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; kills it and throws if it takes longer than `timeoutMs`. */
export async function runToExit(
  name: string,
  command: string,
  args: readonly string[],
  opts: SpawnTrackedOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 10000;
  const child = await spawnTracked(name, command, args, opts);
  const info = await within(child.exited, timeoutMs);
  if (!settled(info)) {
    await child.stop('SIGKILL');
    await child.drained(500);
    throw new Error(`${name} did not exit within ${timeoutMs} ms\n--- output ---\n${child.output()}`);
  }
  await child.drained();
  return { ...info, stdout: child.stdout(), stderr: child.stderr() };
}
