#!/usr/bin/env node
import cluster from 'node:cluster';
import { resolve } from 'node:path';
import { FILE_WATCH, createApp, type App, type AppOptions } from './app';
import { loadConfig, type Config } from './config/load';
import { isGatewayError } from './errors';
import { createLogger, type Logger } from './observability/logger';
import { clusterMetricsSource, reportToPrimary } from './observability/metrics';

/*
 * The only file that reads process.env and argv, installs signal handlers, and exits.
 * Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad settings.
 *
 * WORKERS > 1: the primary serves the admin port (aggregating its workers' metrics) and
 * forks that many workers sharing the proxy port through node:cluster. State they share
 * (limits, keys, health, blocks) lives in Redis, which WORKERS > 1 requires.
 */

const RELOAD_TIERS = 'tollgate:reload-tiers';
const RELOAD_ROUTES = 'tollgate:reload-routes';
const RELOAD_TLS = 'tollgate:reload-tls';
const SHUTDOWN = 'tollgate:shutdown';

function isMessage(m: unknown, type: string): m is { type: string; actor?: unknown } {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
}

function fail(message: string, code: number): never {
  process.stderr.write(`tollgate: ${message}\n`);
  process.exit(code);
}

function readConfig(): Config {
  try {
    return loadConfig({ env: process.env, argv: process.argv.slice(2), baseDir: resolve(__dirname, '..'), cwd: process.cwd() });
  } catch (err) {
    if (isGatewayError(err)) fail(err.message, 2);
    throw err;
  }
}

/** `beforeStart`: after the settings were checked (createApp), before listening. */
async function startApp(config: Config, log: Logger, options: AppOptions, beforeStart?: () => void): Promise<App> {
  try {
    const app = await createApp(config, log, options);
    beforeStart?.();
    await app.start();
    return app;
  } catch (err) {
    if (isGatewayError(err) && err.code === 'invalid_config') fail(err.message, 2);
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES') fail(`cannot listen: ${e.message}`, 1);
    log.fatal({ err }, 'startup failed');
    fail(`startup failed: ${e.message}`, 1);
  }
}

/**
 * SIGTERM/SIGINT drain once; a second signal exits at once. SIGHUP reloads tiers, routes and the TLS pair.
 * Returns the drain, for a worker to run when its primary asks (which is never "second").
 */
function installSignals(log: Logger, stop: () => Promise<void>, reload: () => void): (reason: string) => void {
  let stopping = false;
  const shutdown = (signal: string, fromPrimary = false) => {
    if (stopping) {
      if (fromPrimary) return;
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    stop().then(
      () => { log.info('stopped'); process.exit(0); },
      (err: unknown) => { log.error({ err }, 'shutdown failed'); process.exit(1); },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', reload);
  // Last line of defence: log and keep serving rather than crash on a stray socket error.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  return (reason) => shutdown(reason, true);
}

async function runSingle(config: Config, log: Logger): Promise<void> {
  const app = await startApp(config, log, { role: 'all' });
  installSignals(log, () => app.stop(), () => { reloadAll(app); void app.reloadTls('SIGHUP'); });
}

function reloadAll(app: App): void {
  void app.reloadTiers('SIGHUP');
  void app.reloadRoutes('SIGHUP');
}

async function runWorker(config: Config, log: Logger): Promise<void> {
  const app = await startApp(config, log, { role: 'proxy' });
  reportToPrimary(app.metrics);
  const drain = installSignals(log, () => app.stop(), () => { reloadAll(app); void app.reloadTls('SIGHUP'); });
  process.on('message', (m: unknown) => {
    if (isMessage(m, RELOAD_TIERS)) void app.reloadTiers(String(m.actor ?? 'primary'));
    if (isMessage(m, RELOAD_ROUTES)) void app.reloadRoutes(String(m.actor ?? 'primary'));
    if (isMessage(m, RELOAD_TLS)) void app.reloadTls(String(m.actor ?? 'primary'));
    if (isMessage(m, SHUTDOWN)) drain('primary');
  });
}

async function runPrimary(config: Config, log: Logger): Promise<void> {
  let stopping = false;
  const broadcast = (type: string) => (actor: string) => {
    if (actor === FILE_WATCH) return; // every worker watches the file itself
    for (const w of Object.values(cluster.workers ?? {})) w?.send({ type, actor });
  };
  const fork = () => cluster.fork();
  let restarts = 0;
  const listening = new Set<number>();
  cluster.on('listening', (worker) => listening.add(worker.id));
  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker.id);
    if (stopping) return;
    restarts += 1;
    log.error({ workerPid: worker.process.pid, code, signal }, 'worker exited; starting another');
    // Back off when workers die in a loop (e.g. a port taken), without ever giving up.
    setTimeout(fork, Math.min(100 * restarts, 5000)).unref();
  });
  // Workers are forked once createApp has checked the files (tiers, TLS pair): a bad one
  // is then one line and exit 2, not workers dying mid-start around it.
  const app = await startApp(config, log, {
    role: 'admin',
    metricsOverride: clusterMetricsSource(),
    onTiersReloaded: broadcast(RELOAD_TIERS),
    onRoutesReloaded: broadcast(RELOAD_ROUTES),
    readyCheck: () => listening.size >= config.workers,
  }, () => { for (let i = 0; i < config.workers; i++) fork(); });
  log.info({ workers: config.workers }, 'primary started workers');

  const stopWorkers = async () => {
    stopping = true;
    const alive = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    await Promise.all(alive.map((w) => new Promise<void>((done) => {
      const killer = setTimeout(() => w.process.kill('SIGKILL'), config.shutdownTimeoutMs + 2000);
      w.once('exit', () => { clearTimeout(killer); done(); });
      // A message, not a signal: after Ctrl-C a worker already draining from its own SIGINT
      // must not take a second signal as "exit now".
      w.send({ type: SHUTDOWN });
    })));
  };
  installSignals(
    log,
    async () => {
      // /readyz turns 503 at once (app.stop sets draining first), then workers drain.
      const adminStopped = app.stop({ beforeClose: stopWorkers });
      await adminStopped;
    },
    () => {
      reloadAll(app);
      // The workers hold the proxy port's certificate (each also watches the files itself).
      for (const w of Object.values(cluster.workers ?? {})) w?.send({ type: RELOAD_TLS, actor: 'SIGHUP' });
    },
  );
}

async function main(): Promise<void> {
  const config = readConfig();
  const log = createLogger(config.logLevel, config.apiKeyHeader);
  if (config.workers <= 1) return runSingle(config, log);
  if (cluster.isPrimary) return runPrimary(config, log);
  return runWorker(config, log);
}

void main();
