#!/usr/bin/env node
'use strict';

// Soak test: does the gateway's memory stay flat over a long run? Starts its own
// redis-server, an echo upstream and the built gateway (dist/main.js) on free ports,
// sends --requests requests over --keys rotating API keys with autocannon, prints the
// gateway's resident memory (RSS) after every --every requests, and a summary line
// comparing the RSS after the first --every requests with the RSS at the end. It also
// counts the gateway's access-log lines (ACCESS_LOG, SPEC §10) and, after stopping the
// gateway with SIGTERM, compares them with the responses received: a line lost (on the
// way out or at shutdown) makes the run fail.
//
//   npm run build && node scripts/soak.js [--requests 1000000] [--keys 1000] [--connections 50]
//                                          [--every 100000] [--tier enterprise]
//
// Not part of `npm test`: a million requests take minutes. Needs redis-server on the PATH.
// Exit 0 when the run completed (the figures are for a human to judge), 1 when something
// failed to start, the gateway died or an access-log line is missing, 2 for bad arguments.

const { spawn } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');
const { parseFlags, positiveInteger, optionsOrExit } = require('./cli');
const autocannon = require('autocannon');
const { startEchoUpstream } = require('./echo-upstream');

const ROOT = resolve(__dirname, '..');
const GATEWAY_MAIN = join(ROOT, 'dist', 'main.js');
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;

const USAGE = `Usage: soak [--requests 1000000] [--keys 1000] [--connections 50] [--every 100000] [--tier enterprise]
  --requests N     requests to send in all
  --keys K         distinct API keys, used in rotation (generated into a KEYS_FILE)
  --connections C  concurrent keep-alive connections
  --every N        print the gateway's RSS after every N requests
  --tier T         the keys' tier (shipped tiers: free, pro, enterprise)`;

function parseOptions(argv) {
  const values = parseFlags(argv, {
    requests: { type: 'string', default: '1000000' },
    keys: { type: 'string', default: '1000' },
    connections: { type: 'string', default: '50' },
    every: { type: 'string', default: '100000' },
    tier: { type: 'string', default: 'enterprise' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return { help: true };
  return {
    requests: positiveInteger(values.requests, '--requests'),
    keys: positiveInteger(values.keys, '--keys'),
    connections: positiveInteger(values.connections, '--connections'),
    every: positiveInteger(values.every, '--every'),
    tier: values.tier,
  };
}

function log(text) {
  process.stdout.write(`${text}\n`);
}

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` until it resolves true; throws after `timeoutMs`, or at once if `child` exits. */
async function waitUntil(what, probe, timeoutMs, child) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what}: the process exited with code ${child.exitCode}`);
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

function redisPing(port) {
  return new Promise((resolvePing) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(1000, () => socket.destroy());
    socket.once('error', () => resolvePing(false));
    socket.once('close', () => resolvePing(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      resolvePing(data.toString().startsWith('+PONG'));
      socket.destroy();
    });
  });
}

function httpGet(url) {
  return new Promise((resolveGet, reject) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolveGet({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

const ACCESS_MARK = '"access":true';

/**
 * A child whose output is kept (the last 200 lines other than access-log lines) for when
 * something goes wrong; `child.accessLines()` counts the access-log lines on its stdout
 * (whole lines only: a line split across two chunks is counted once it is complete).
 */
function spawnKept(name, command, args, options) {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = [];
  let accessLines = 0;
  let partial = '';
  const keep = (chunk) => {
    for (const line of chunk.toString().split('\n')) if (line) tail.push(line);
    if (tail.length > 200) tail.splice(0, tail.length - 200);
  };
  const keepStdout = (chunk) => {
    const text = partial + chunk.toString();
    const end = text.lastIndexOf('\n');
    partial = end === -1 ? text : text.slice(end + 1);
    if (end === -1) return;
    for (const line of text.slice(0, end).split('\n')) {
      if (line.includes(ACCESS_MARK)) accessLines += 1;
      else if (line) tail.push(line);
    }
    if (tail.length > 200) tail.splice(0, tail.length - 200);
  };
  child.accessLines = () => accessLines;
  child.stdout.on('data', keepStdout);
  child.stderr.on('data', keep);
  child.on('error', (err) => tail.push(`[soak] could not run ${command}: ${err.message}`));
  // 'close', not 'exit': the child's stdout may still hold output when it exits.
  child.exited = new Promise((r) => child.once('close', (code, signal) => r({ code, signal })));
  child.tailText = () => `--- last output of ${name} ---\n${tail.join('\n')}`;
  return child;
}

async function stopChild(child, timeoutMs = STOP_TIMEOUT_MS) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await child.exited;
  clearTimeout(timer);
}

/** The gateway's resident set in bytes: /proc on Linux, else prom-client's process metric. */
async function gatewayRss(pid, adminUrl) {
  try {
    const status = require('node:fs').readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux: ask the gateway
  }
  const r = await httpGet(`${adminUrl}/metrics`);
  const m = /^process_resident_memory_bytes (\d+)/m.exec(r.body);
  if (!m) throw new Error('no process_resident_memory_bytes on /metrics');
  return Number(m[1]);
}

function mb(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** One autocannon run of exactly `amount` requests, keys in rotation from `state.next`. */
function runChunk(url, amount, connections, keys, state, statuses) {
  return new Promise((resolveRun, reject) => {
    const instance = autocannon(
      {
        url,
        connections,
        amount,
        timeout: 10,
        requests: [
          {
            method: 'GET',
            setupRequest(req) {
              const i = state.next++;
              return { ...req, path: `/soak/${i % 1000}`, headers: { ...req.headers, 'x-api-key': keys[i % keys.length] } };
            },
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolveRun(result)),
    );
    instance.on('response', (_client, statusCode) => {
      statuses[statusCode] = (statuses[statusCode] || 0) + 1;
    });
    state.instance = instance;
  });
}

async function main() {
  const options = optionsOrExit('soak', USAGE, () => parseOptions(process.argv.slice(2)));
  if (options === null) return;
  if (!require('node:fs').existsSync(GATEWAY_MAIN)) {
    process.stderr.write(`soak: ${GATEWAY_MAIN} does not exist; run \`npm run build\` first\n`);
    process.exit(1);
  }

  const dir = mkdtempSync(join(tmpdir(), 'tollgate-soak-'));
  let redis;
  let upstream;
  let gateway;
  const state = { next: 0, instance: null, interrupted: false };
  const onSignal = () => {
    state.interrupted = true;
    if (state.instance) state.instance.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // Keys: generated into a KEYS_FILE, which the gateway imports at startup.
    const keys = Array.from({ length: options.keys }, (_, i) => `soak_${i}_${Math.random().toString(36).slice(2, 12)}`);
    const keysFile = join(dir, 'keys.json');
    writeFileSync(keysFile, JSON.stringify({ keys: keys.map((key, i) => ({ key, tier: options.tier, name: `soak ${i}` })) }));

    const [redisPort, port, adminPort] = [await freePort(), await freePort(), await freePort()];
    redis = spawnKept('redis-server', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { cwd: dir });
    await waitUntil(`redis-server on port ${redisPort}`, () => redisPing(redisPort), START_TIMEOUT_MS, redis).catch((err) => {
      throw new Error(`${err.message}\n${redis.tailText()}`);
    });

    upstream = await startEchoUpstream({ port: 0, host: '127.0.0.1' });
    const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;

    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      HOST: '127.0.0.1',
      PORT: String(port),
      ADMIN_HOST: '127.0.0.1',
      ADMIN_PORT: String(adminPort),
      UPSTREAM_URL: upstreamUrl,
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      KEYS_FILE: keysFile,
      LOG_LEVEL: 'warn',
    };
    gateway = spawnKept('gateway', process.execPath, [GATEWAY_MAIN], { cwd: ROOT, env });
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    await waitUntil('gateway /readyz', async () => (await httpGet(`${adminUrl}/readyz`)).status === 200, START_TIMEOUT_MS, gateway).catch((err) => {
      throw new Error(`${err.message}\n${gateway.tailText()}`);
    });
    // The keys file is imported before the gateway listens; check one key works.
    const probe = await new Promise((r, j) => {
      http.get(`http://127.0.0.1:${port}/`, { agent: false, headers: { 'x-api-key': keys[keys.length - 1] } }, (res) => { res.resume(); res.on('end', () => r(res.statusCode)); }).on('error', j);
    });
    if (probe !== 200) throw new Error(`a soak key got ${probe}, not 200`);

    log(`soak: ${options.requests} requests, ${options.keys} ${options.tier} keys, ${options.connections} connections; gateway pid ${gateway.pid}, RSS at start ${mb(await gatewayRss(gateway.pid, adminUrl))}`);
    const statuses = {};
    const samples = [];
    let errors = 0;
    let timeouts = 0;
    const started = Date.now();
    let sent = 0;
    while (sent < options.requests && !state.interrupted) {
      const amount = Math.min(options.every, options.requests - sent);
      const result = await runChunk(`http://127.0.0.1:${port}`, amount, options.connections, keys, state, statuses);
      errors += result.errors;
      timeouts += result.timeouts;
      sent += amount;
      if (gateway.exitCode !== null) throw new Error(`the gateway exited with code ${gateway.exitCode}\n${gateway.tailText()}`);
      const rss = await gatewayRss(gateway.pid, adminUrl);
      samples.push({ requests: sent, rss });
      log(`soak: ${String(sent).padStart(9)} requests  RSS ${mb(rss).padStart(9)}  ${Math.round(amount / result.duration)} req/s  p99 ${result.latency.p99} ms`);
    }

    const seconds = (Date.now() - started) / 1000;
    const first = samples[0];
    const last = samples[samples.length - 1];
    if (!first) throw new Error('interrupted before the first sample');
    const growth = ((last.rss - first.rss) / first.rss) * 100;
    log(`soak: statuses ${JSON.stringify(statuses)}, connection errors ${errors}, timeouts ${timeouts}, ${seconds.toFixed(0)} s (${Math.round(sent / seconds)} req/s)`);
    log(`soak summary: RSS ${mb(first.rss)} at ${first.requests} requests → ${mb(last.rss)} at ${last.requests} requests: ${growth >= 0 ? '+' : ''}${growth.toFixed(1)}%`);
    // Every response has its access-log line once the gateway has stopped (SIGTERM drains
    // and flushes): the soak's responses, plus the probe request.
    await stopChild(gateway);
    const responses = Object.values(statuses).reduce((a, b) => a + b, 0) + 1;
    const lines = gateway.accessLines();
    log(`soak access log: ${lines} lines for ${responses} responses${lines === responses ? ', none lost' : `: ${responses - lines} missing`} (exit ${gateway.exitCode})`);
    if (lines !== responses) process.exitCode = 1;
  } catch (err) {
    process.stderr.write(`soak: ${err.message}\n`);
    process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopChild(gateway);
    if (upstream) {
      upstream.closeAllConnections();
      await new Promise((r) => upstream.close(() => r()));
    }
    await stopChild(redis, 5000);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  void main();
}

module.exports = { parseOptions };
