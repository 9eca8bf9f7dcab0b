#!/usr/bin/env node
'use strict';

// `npm test`'s pretest step and `.ci/run`'s set-up: the one list of system tools the test
// suite starts, with the Debian package of each. All present: silent, exit 0. Missing and
// running as root with apt-get: installs them (one line says so), then stops the services the
// packages started, by the PID in their pidfiles. Otherwise: one line naming what is missing
// and the command that installs it, exit 2, before Jest starts (so no wall of ENOENT failures).
// Plain Node, no dependencies: it runs before `npm run build` and on a fresh machine.
//
// Environment (docs/test-setup.md):
//   TOLLGATE_NO_INSTALL=1   never install, even as root: report and exit 2
//   TOLLGATE_RUN_DIR        where the services' pidfiles are looked for (default /run)
//   TOLLGATE_TEST_UID       the uid to act as; only for this script's own tests

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/**
 * command: what the tests run; pkg: its Debian package; also: absolute paths the tests use
 * when the command is not on PATH; service: the pidfile (under the run dir) of the daemon the
 * package starts on install, and its process name.
 */
const TOOLS = [
  { command: 'redis-server', pkg: 'redis-server', service: { pidfile: 'redis/redis-server.pid', name: 'redis-server' } },
  { command: 'redis-cli', pkg: 'redis-tools' },
  // test/deploy/renderNginx.ts runs /usr/sbin/nginx, which is not on a normal user's PATH.
  { command: 'nginx', pkg: 'nginx', also: ['/usr/sbin/nginx'], service: { pidfile: 'nginx.pid', name: 'nginx' } },
  { command: 'promtool', pkg: 'prometheus', service: { pidfile: 'prometheus/prometheus.pid', name: 'prometheus' } },
  { command: 'openssl', pkg: 'openssl' },
  { command: 'h2load', pkg: 'nghttp2-client' },
];

const PREFIX = 'test-tools:';
const STOP_WAIT_MS = 5000;

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(command, env) {
  for (const dir of (env.PATH || '').split(path.delimiter)) {
    if (dir !== '' && isExecutable(path.join(dir, command))) return true;
  }
  return false;
}

function missingTools(env) {
  return TOOLS.filter((tool) => !onPath(tool.command, env) && !(tool.also || []).some(isExecutable));
}

function uid(env) {
  if (env.TOLLGATE_TEST_UID !== undefined && env.TOLLGATE_TEST_UID !== '') return Number(env.TOLLGATE_TEST_UID);
  return typeof process.getuid === 'function' ? process.getuid() : -1;
}

function installCommand(pkgs, sudo) {
  const s = sudo ? 'sudo ' : '';
  return `${s}apt-get update && ${s}apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
}

function describeMissing(missing) {
  return missing.map((tool) => (tool.command === tool.pkg ? tool.command : `${tool.command} (${tool.pkg})`)).join(', ');
}

function fail(line) {
  process.stderr.write(`${PREFIX} ${line}\n`);
  process.exit(2);
}

function readPid(file) {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie (a zombie's parent has yet to reap it; it holds no port). */
function running(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

/** The pid's process name, when /proc says; a stale pidfile must not name someone else. */
function processName(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** SIGTERM, wait up to STOP_WAIT_MS, then SIGKILL. */
function stopPid(pid) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_WAIT_MS;
  while (running(pid) && Date.now() < deadline) sleepMs(50);
  if (running(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone between the check and the kill.
    }
  }
}

function runApt(args, env, pkgs) {
  const r = spawnSync('apt-get', args, {
    env: { ...env, DEBIAN_FRONTEND: 'noninteractive' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status === 0) return;
  // apt's own output goes out only when it failed, ahead of the one line that says so.
  process.stderr.write(`${r.stdout || ''}${r.stderr || ''}`);
  const why = r.error ? r.error.message : `exit code ${r.status === null ? r.signal : r.status}`;
  fail(`apt-get ${args[0]} failed (${why}); install by hand with: ${installCommand(pkgs, false)}`);
}

function install(missing, pkgs, env) {
  const runDir = env.TOLLGATE_RUN_DIR || '/run';
  const services = missing.filter((tool) => tool.service).map((tool) => ({
    ...tool.service,
    file: path.join(runDir, tool.service.pidfile),
  }));
  const before = new Map(services.map((service) => [service.file, readPid(service.file)]));

  process.stdout.write(
    `${PREFIX} the tests need ${describeMissing(missing)}; installing as root: apt-get install -y --no-install-recommends ${pkgs.join(' ')} (TOLLGATE_NO_INSTALL=1 to stop instead)\n`,
  );
  runApt(['update', '-qq'], env, pkgs);
  runApt(['install', '-y', '-qq', '--no-install-recommends', ...pkgs], env, pkgs);

  // Debian starts a package's daemon on install; the tests start their own on free ports,
  // so one holding 6379 or 80 is in the way. Only a pid the install wrote is ours to stop.
  for (const service of services) {
    const pid = readPid(service.file);
    if (pid === undefined || pid === before.get(service.file) || !running(pid)) continue;
    const name = processName(pid);
    if (name !== undefined && name !== service.name) continue;
    stopPid(pid);
  }
}

function main() {
  const env = process.env;
  const missing = missingTools(env);
  if (missing.length === 0) return;

  const root = uid(env) === 0;
  const apt = onPath('apt-get', env);
  const noInstall = env.TOLLGATE_NO_INSTALL === '1';
  const pkgs = [...new Set(missing.map((tool) => tool.pkg))];
  if (!apt) {
    fail(`the tests need ${describeMissing(missing)}, not found on PATH; install them with your package manager (Debian: ${installCommand(pkgs, !root)})`);
  }
  if (!root || noInstall) {
    const why = noInstall ? 'TOLLGATE_NO_INSTALL=1' : 'not root';
    fail(`the tests need ${describeMissing(missing)}, not found on PATH (${why}, so not installing); install with: ${installCommand(pkgs, !root)}`);
  }

  install(missing, pkgs, env);
  const still = missingTools(env);
  if (still.length > 0) {
    fail(`still missing after apt-get install: ${describeMissing(still)}; install with: ${installCommand(pkgs, false)}`);
  }
}

main();
