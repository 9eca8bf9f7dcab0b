import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports';
import { runToExit, spawnTracked, waitForAlive, type TrackedChild } from './processes';
import { parseCommandStats, redisCommand, redisInfo } from './resp';

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** redis://127.0.0.1:PORT, or redis://:password@127.0.0.1:PORT */
  readonly url: string;
  /** Graceful (SIGTERM, which skips saving since `save` is off); waits for exit, removes the temp dir. */
  stop(): Promise<void>;
  /** SIGKILL; waits for exit. Data is gone: nothing is persisted. */
  kill(): Promise<void>;
  /** SIGSTOP: Redis hangs, connections stay open, nothing answers. */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  /** Starts again on the same port (stopping it first if it runs); waits until PING answers. */
  restart(): Promise<void>;
  /** Calls per command from INFO commandstats, lower-case: { evalsha: 12, get: 3, ... }. */
  commandStats(): Promise<Record<string, number>>;
  /** CONFIG RESETSTAT */
  resetStats(): Promise<void>;
  /** redis-cli -p PORT [-a password] ...args; resolves with stdout (error replies included). */
  cli(...args: string[]): Promise<string>;
  /** What redis-server wrote so far (current run). */
  output(): string;
}

export interface StartRedisOptions {
  password?: string;
  port?: number;
  extraArgs?: string[];
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10000;
const START_ATTEMPTS = 3;

export function isAddressInUse(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'EADDRINUSE';
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  // freePort() only proves the port was free a moment ago; another process (or a parallel
  // jest worker) may take it before redis-server binds, so a chosen port gets retried.
  const attempts = opts.port === undefined ? START_ATTEMPTS : 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = opts.port ?? (await freePort());
    try {
      return await startOnPort(port, opts);
    } catch (error) {
      if (!isAddressInUse(error)) throw error;
      lastError = error;
    }
  }
  throw lastError;
}

async function startOnPort(port: number, opts: StartRedisOptions): Promise<RedisServer> {
  const password = opts.password;
  const dir = mkdtempSync(path.join(os.tmpdir(), `tollgate-redis-${port}-`));
  const args = [
    '--port', String(port),
    '--bind', HOST,
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    // Redis 7 waits 5 s before the first full sync of a replica, hoping more will join.
    '--repl-diskless-sync-delay', '0',
    ...(password !== undefined ? ['--requirepass', password] : []),
    ...(opts.extraArgs ?? []),
  ];
  const auth = password !== undefined ? { password } : {};
  let child: TrackedChild | undefined;

  async function launch(): Promise<void> {
    mkdirSync(dir, { recursive: true });
    const started = await spawnTracked(`redis-server :${port}`, 'redis-server', args, { cwd: dir });
    child = started;
    try {
      await waitForAlive(
        started,
        `redis-server on port ${port} to answer PING`,
        async () => (await redisCommand(port, ['PING'], auth)) === 'PONG',
        READY_TIMEOUT_MS,
      );
    } catch (error) {
      await started.stop('SIGKILL');
      await started.drained(500);
      if (/Address already in use/.test(started.output())) {
        throw Object.assign(new Error(`port ${port} is already in use\n${started.output()}`), {
          code: 'EADDRINUSE',
          cause: error,
        });
      }
      throw error;
    }
  }

  function current(): TrackedChild {
    if (child === undefined) throw new Error(`redis-server on port ${port} was never started`);
    return child;
  }

  async function command(args: string[]): Promise<string> {
    const reply = await redisCommand(port, args, { ...auth, timeoutMs: 5000 });
    if (typeof reply !== 'string') throw new Error(`${args.join(' ')} returned ${JSON.stringify(reply)}`);
    return reply;
  }

  try {
    await launch();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const userinfo = password !== undefined ? `:${encodeURIComponent(password)}@` : '';
  return {
    host: HOST,
    port,
    url: `redis://${userinfo}${HOST}:${port}`,
    async stop() {
      await current().stop('SIGTERM', 5000);
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      await current().stop('SIGKILL');
    },
    pause() {
      current().signal('SIGSTOP');
    },
    resume() {
      current().signal('SIGCONT');
    },
    async restart() {
      await current().stop('SIGTERM', 5000);
      await launch();
    },
    async commandStats() {
      return parseCommandStats(await redisInfo(port, 'commandstats', { ...auth, timeoutMs: 5000 }));
    },
    async resetStats() {
      await command(['CONFIG', 'RESETSTAT']);
    },
    async cli(...cliArgs: string[]) {
      const authArgs = password !== undefined ? ['-a', password, '--no-auth-warning'] : [];
      const result = await runToExit('redis-cli', 'redis-cli', ['-h', HOST, '-p', String(port), ...authArgs, ...cliArgs], {
        timeoutMs: 10000,
      });
      if (result.code !== 0) {
        throw new Error(`redis-cli ${cliArgs.join(' ')} exited with code ${String(result.code)}: ${result.stderr}${result.stdout}`);
      }
      return result.stdout;
    },
    output() {
      return current().output();
    },
  };
}
