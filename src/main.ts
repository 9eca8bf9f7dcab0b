#!/usr/bin/env node
import { resolve } from 'node:path';
import { createApp, type App } from './app';
import { loadConfig, type Config } from './config/load';
import { isGatewayError } from './errors';
import { createLogger } from './observability/logger';

/*
 * The only file that reads process.env and argv, installs signal handlers, and exits.
 * Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad settings.
 */

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

async function main(): Promise<void> {
  const config = readConfig();
  const log = createLogger(config.logLevel, config.apiKeyHeader);
  let app: App;
  try {
    app = await createApp(config, log);
    await app.start();
  } catch (err) {
    if (isGatewayError(err) && err.code === 'invalid_config') fail(err.message, 2);
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES') fail(`cannot listen: ${e.message}`, 1);
    log.fatal({ err }, 'startup failed');
    fail(`startup failed: ${e.message}`, 1);
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, drainMs: config.shutdownTimeoutMs }, 'shutting down');
    app.stop().then(
      () => { log.info('stopped'); process.exit(0); },
      (err: unknown) => { log.error({ err }, 'shutdown failed'); process.exit(1); },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    void app.reloadTiers('SIGHUP');
  });
  // Last line of defence: log and keep serving rather than crash on a stray socket error.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
}

void main();
