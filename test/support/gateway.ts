import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePorts } from './ports';
import { runToExit, spawnTracked, waitFor, waitForAlive, type ExitInfo } from './processes';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const GATEWAY_MAIN = path.join(REPO_ROOT, 'dist', 'main.js');

export interface GatewayProcess {
  url: string;
  adminUrl: string;
  port: number;
  adminPort: number;
  pid: number;
  /** Everything the process wrote on stdout and stderr so far, interleaved. */
  output(): string;
  /** Resolves once output() matches `pattern`; throws with the output after `timeoutMs`. */
  waitForOutput(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  /** Sends `signal` (SIGTERM), waits up to `timeoutMs` (15 s), then SIGKILLs; the exit code (null if killed). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  exited: Promise<ExitInfo>;
}

export interface StartGatewayOptions {
  env: Record<string, string>;
  args?: string[];
  /** Wait until GET /readyz answers 200 (default true). */
  waitReady?: boolean;
  readyTimeoutMs?: number;
}

const READY_TIMEOUT_MS = 15000;
// Above the default SHUTDOWN_TIMEOUT_MS (10 s), so a draining gateway is not SIGKILLed.
const STOP_TIMEOUT_MS = 15000;
const RUN_TO_EXIT_TIMEOUT_MS = 15000;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function assertBuilt(): void {
  if (!existsSync(GATEWAY_MAIN)) {
    throw new Error(`${GATEWAY_MAIN} does not exist: run \`npm run build\` first (\`npm test\` does it for you)`);
  }
}

interface GatewayEnv {
  env: Record<string, string>;
  port: string;
  adminPort: string;
}

// Only PATH and HOME are inherited: a REDIS_URL or PORT in the developer's shell or in CI
// must not change what a test runs against.
async function gatewayEnv(given: Record<string, string>): Promise<GatewayEnv> {
  const [freeProxy, freeAdmin] = await freePorts(2);
  const port = given.PORT ?? String(freeProxy);
  let adminPort = given.ADMIN_PORT ?? String(freeAdmin);
  if (given.ADMIN_PORT === undefined && adminPort === port) adminPort = String(freeProxy);
  const inherited: Record<string, string> = {};
  for (const name of ['PATH', 'HOME'] as const) {
    const value = process.env[name];
    if (value !== undefined) inherited[name] = value;
  }
  return {
    env: {
      ...inherited,
      HOST: '127.0.0.1',
      ADMIN_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...given,
      PORT: port,
      ADMIN_PORT: adminPort,
    },
    port,
    adminPort,
  };
}

/** GET without keep-alive, so probes leave no sockets behind. */
async function probeStatus(url: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/**
 * Starts dist/main.js on free ports and (by default) waits until /readyz answers 200. A port
 * is free when drawn but can be taken before the gateway binds it (another gateway started
 * at the same moment, or an outgoing connection's ephemeral port): when the gateway exits
 * with EADDRINUSE on ports it drew itself, it starts again on newly drawn ones, as the Redis
 * helpers do.
 */
export async function startGateway(opts: StartGatewayOptions): Promise<GatewayProcess> {
  const ownPorts = opts.env.PORT === undefined && opts.env.ADMIN_PORT === undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGatewayOnce(opts);
    } catch (error) {
      if (!ownPorts || attempt >= 3 || !/EADDRINUSE/.test(messageOf(error))) throw error;
    }
  }
}

async function startGatewayOnce(opts: StartGatewayOptions): Promise<GatewayProcess> {
  assertBuilt();
  const { env, port, adminPort } = await gatewayEnv(opts.env);
  const child = await spawnTracked(`gateway :${port}`, process.execPath, [GATEWAY_MAIN, ...(opts.args ?? [])], {
    cwd: REPO_ROOT,
    env,
  });
  const url = `http://127.0.0.1:${port}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;

  if (opts.waitReady ?? true) {
    const timeoutMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
    try {
      await waitForAlive(
        child,
        `gateway ${adminUrl}/readyz to answer 200`,
        async () => (await probeStatus(`${adminUrl}/readyz`)) === 200,
        timeoutMs,
        100,
      );
    } catch (error) {
      // An exit already carries the output in its message; a timeout does not.
      if (child.alive()) {
        await child.stop('SIGKILL');
        await child.drained(500);
        throw new Error(`${messageOf(error)}\n--- gateway output ---\n${child.output()}`, { cause: error });
      }
      throw error;
    }
  }

  return {
    url,
    adminUrl,
    port: Number(port),
    adminPort: Number(adminPort),
    pid: child.pid,
    output: () => child.output(),
    async waitForOutput(pattern, timeoutMs = 10000) {
      const matches = (text: string): boolean =>
        typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text);
      try {
        await waitFor(`gateway output to match ${String(pattern)}`, async () => matches(child.output()), timeoutMs);
      } catch (error) {
        throw new Error(`${messageOf(error)}\n--- gateway output ---\n${child.output()}`, { cause: error });
      }
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) {
      const info = await child.stop(signal, timeoutMs);
      await child.drained(500);
      return info.code;
    },
    exited: child.exited,
  };
}

/**
 * Runs the gateway until it exits on its own (e.g. a config error, exit code 2). It gets the
 * same environment as startGateway, free ports included, so a config that turns out valid
 * does not bind 8080; it is SIGKILLed and this throws if it is still running after `timeoutMs`.
 */
export async function runGatewayToExit(opts: {
  env: Record<string, string>;
  args?: string[];
  timeoutMs?: number;
}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  assertBuilt();
  const { env, port } = await gatewayEnv(opts.env);
  const result = await runToExit(`gateway :${port}`, process.execPath, [GATEWAY_MAIN, ...(opts.args ?? [])], {
    cwd: REPO_ROOT,
    env,
    timeoutMs: opts.timeoutMs ?? RUN_TO_EXIT_TIMEOUT_MS,
  });
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}
