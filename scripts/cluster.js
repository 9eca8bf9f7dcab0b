#!/usr/bin/env node
'use strict';

// A throwaway 3-master Redis Cluster for development (no replicas, no persistence), in a
// temporary directory. Needs redis-server and redis-cli (Redis >= 7 for --bus-ports).
//
//   node scripts/cluster.js                      # 127.0.0.1:7000-7002
//   node scripts/cluster.js --ports 7100,7101,7102 [--bus-ports 17100,17101,17102]
//
// Prints `REDIS_CLUSTER_NODES=127.0.0.1:7000,…` once the cluster is ready (cluster_state:ok
// on every node), then keeps running. Ctrl-C (SIGINT) or SIGTERM stops the nodes and
// removes the directory.
//
//   REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 \
//     UPSTREAM_URL=http://127.0.0.1:3000 node dist/main.js

const { spawn, execFile } = require('node:child_process');
const { mkdtempSync, mkdirSync, rmSync } = require('node:fs');
const net = require('node:net');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { parseArgs, promisify } = require('node:util');

const execFileAsync = promisify(execFile);
const REDIS_SERVER = process.env.REDIS_SERVER_BIN || 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI_BIN || 'redis-cli';
const DEFAULT_PORTS = [7000, 7001, 7002];
const READY_TIMEOUT_MS = 20_000;

const USAGE = `Usage: cluster [--host 127.0.0.1] [--ports 7000,7001,7002] [--bus-ports P,P,P]
Starts 3 Redis Cluster masters and prints REDIS_CLUSTER_NODES. Ctrl-C stops them.
Each node also uses a cluster bus port (default: port + 10000).`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function parsePortList(text, flag) {
  const ports = text.split(',').map((p) => Number(p.trim()));
  if (ports.length !== 3 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw new Error(`${flag} must be three ports 1-65535 separated by commas, got ${JSON.stringify(text)}`);
  }
  if (new Set(ports).size !== 3) throw new Error(`${flag} has a port twice: ${text}`);
  return ports;
}

function portIsFree(port, host) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

async function cli(host, port, ...args) {
  const { stdout } = await execFileAsync(REDIS_CLI, ['-h', host, '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

async function waitFor(what, check, timeoutMs = READY_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err.fatal) throw err;
      last = err.message;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await sleep(100);
  }
}

/**
 * Start the cluster. Resolves once every node reports cluster_state:ok.
 * @param {{ host?: string, ports?: number[], busPorts?: number[], log?: (line: string) => void }} [options]
 * @returns {Promise<{ nodes: string, dir: string, pids: number[], stop: () => Promise<void> }>}
 */
async function startCluster(options = {}) {
  const host = options.host || '127.0.0.1';
  const ports = options.ports || DEFAULT_PORTS;
  const busPorts = options.busPorts || ports.map((p) => p + 10000);
  const log = options.log || (() => {});
  for (const port of [...ports, ...busPorts]) {
    if (port > 65535) throw new Error(`cluster bus port ${port} is above 65535: pass --bus-ports`);
    if (!(await portIsFree(port, host))) {
      throw new Error(`port ${host}:${port} is in use (a node or its cluster bus port); choose others with --ports/--bus-ports`);
    }
  }

  const dir = mkdtempSync(join(tmpdir(), 'tollgate-redis-cluster-'));
  const children = [];
  let stopped = false;

  async function stop() {
    if (stopped) return;
    stopped = true;
    await Promise.all(children.map((child) => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill('SIGTERM');
    })));
    rmSync(dir, { recursive: true, force: true });
  }

  try {
    for (const [i, port] of ports.entries()) {
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir);
      const args = [
        '--port', String(port),
        '--bind', host,
        '--dir', nodeDir,
        '--cluster-enabled', 'yes',
        '--cluster-config-file', 'nodes.conf',
        '--cluster-node-timeout', '5000',
        '--save', '',
        '--appendonly', 'no',
        '--daemonize', 'no',
        '--logfile', join(nodeDir, 'redis.log'),
      ];
      // --cluster-port exists since Redis 7.0; leave it out for the default (port + 10000)
      // so older servers still work.
      if (busPorts[i] !== port + 10000) args.push('--cluster-port', String(busPorts[i]));
      const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      child.once('error', (err) => {
        child.spawnError = err;
      });
      child.once('exit', (code, signal) => {
        if (!stopped) log(`redis-server on port ${port} exited (${signal || code}) ${stderr.trim()} — see ${join(nodeDir, 'redis.log')}`);
      });
      children.push(child);
    }

    for (const [i, port] of ports.entries()) {
      await waitFor(`redis-server on ${host}:${port}`, async () => {
        const child = children[i];
        if (child.spawnError) throw Object.assign(new Error(`cannot run ${REDIS_SERVER}: ${child.spawnError.message}`), { fatal: true, code: child.spawnError.code });
        if (child.exitCode !== null) throw Object.assign(new Error(`redis-server on ${port} exited with code ${child.exitCode}`), { fatal: true });
        return (await cli(host, port, 'ping')).trim() === 'PONG';
      });
    }

    const addresses = ports.map((port) => `${host}:${port}`);
    await execFileAsync(REDIS_CLI, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });

    for (const port of ports) {
      await waitFor(`cluster_state:ok on ${host}:${port}`, async () => /cluster_state:ok/.test(await cli(host, port, 'cluster', 'info')));
    }
    return { nodes: addresses.join(','), dir, pids: children.map((child) => child.pid), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function main() {
  let host;
  let ports;
  let busPorts;
  try {
    const { values } = parseArgs({
      options: {
        host: { type: 'string' },
        ports: { type: 'string' },
        'bus-ports': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    host = values.host || '127.0.0.1';
    ports = values.ports ? parsePortList(values.ports, '--ports') : DEFAULT_PORTS;
    busPorts = values['bus-ports'] ? parsePortList(values['bus-ports'], '--bus-ports') : undefined;
  } catch (err) {
    process.stderr.write(`cluster: ${err.message}\n\n${USAGE}\n`);
    process.exit(2);
  }

  let cluster;
  let stopping = false;
  const onSignal = (signal) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`cluster: ${signal}, stopping the nodes\n`);
    // Before the cluster is up, startCluster's own cleanup runs when its wait fails;
    // exiting here would leave the nodes behind, so wait for `cluster` instead.
    if (cluster) void cluster.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  try {
    cluster = await startCluster({ host, ports, busPorts, log: (line) => process.stderr.write(`cluster: ${line}\n`) });
  } catch (err) {
    process.stderr.write(`cluster: ${err.code === 'ENOENT' ? `${REDIS_SERVER}/${REDIS_CLI} not found on PATH` : err.message}\n`);
    process.exit(1);
  }
  if (stopping) {
    await cluster.stop();
    process.exit(0);
  }
  process.stderr.write(`cluster: 3 masters up in ${cluster.dir}; Ctrl-C stops them\n`);
  process.stdout.write(`REDIS_CLUSTER_NODES=${cluster.nodes}\n`);
}

if (require.main === module) {
  void main();
}

module.exports = { startCluster };
