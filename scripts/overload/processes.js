'use strict';
// The child processes of the overload experiment (Redis, the fake upstream, one gateway per
// mode) and the promise that each one is gone when the experiment ends, however it ends.
//
// Every child runs in its own process group (detached), so a group kill also takes anything
// it spawned. killAllSync runs on 'exit'; SIGINT/SIGTERM and uncaught errors are routed
// through it by installExitHandlers, so an interrupted run leaves nothing behind.

const { spawn, fork } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const OUTPUT_TAIL = 32 * 1024;

const children = new Set();
let shuttingDown = false;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function killGroup(c, signal) {
  try {
    process.kill(-c.pid, signal);
  } catch {
    try { process.kill(c.pid, signal); } catch { /* already gone */ }
  }
}

function killAllSync() {
  for (const c of children) killGroup(c, 'SIGKILL');
}

/** SIGKILL every child on exit; on SIGINT/SIGTERM/uncaught errors, do that and exit. */
function installExitHandlers(log) {
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      shuttingDown = true;
      log(`${signal}: stopping every child process`);
      killAllSync();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('uncaughtException', (err) => {
    shuttingDown = true;
    log(`uncaught error: ${err && err.stack ? err.stack : err}`);
    killAllSync();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    shuttingDown = true;
    log(`unhandled rejection: ${err && err.stack ? err.stack : err}`);
    killAllSync();
    process.exit(1);
  });
}

function track(name, child, logFile) {
  const c = { name, child, pid: child.pid, output: '', exited: false, exitCode: null, signal: null };
  const sink = logFile ? fs.createWriteStream(logFile) : null;
  const onData = (d) => {
    c.output += d.toString();
    if (c.output.length > OUTPUT_TAIL) c.output = c.output.slice(-OUTPUT_TAIL);
    if (sink) sink.write(d);
  };
  if (child.stdout) child.stdout.on('data', onData);
  if (child.stderr) child.stderr.on('data', onData);
  c.exitedPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      c.exited = true;
      c.exitCode = code;
      c.signal = signal;
      resolve();
    });
    child.on('error', (err) => {
      c.output += `\nspawn error: ${err.message}`;
      c.exited = true;
      c.exitCode = -1;
      resolve();
    });
  });
  children.add(c);
  c.exitedPromise.then(() => {
    killGroup(c, 'SIGKILL'); // whatever the group still holds
    children.delete(c);
    if (sink) sink.end();
  });
  return c;
}

/** Spawns `cmd` in its own process group; output kept (tail) and copied to `logFile`. */
function startChild(name, cmd, args, { env, logFile } = {}) {
  if (shuttingDown) throw new Error('shutting down');
  const child = spawn(cmd, args, { cwd: ROOT, env: env || process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  return track(name, child, logFile);
}

/** Forks a Node module with an IPC channel, in its own process group. */
function forkChild(name, modulePath, { env, logFile } = {}) {
  if (shuttingDown) throw new Error('shutting down');
  const child = fork(modulePath, [], { cwd: ROOT, env: env || process.env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
  return track(name, child, logFile);
}

/** SIGTERM, up to `graceMs` to exit, then SIGKILL. */
async function stopChild(c, graceMs = 5000) {
  if (!c || c.exited) return;
  killGroup(c, 'SIGTERM');
  const done = await Promise.race([c.exitedPromise.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    killGroup(c, 'SIGKILL');
    await Promise.race([c.exitedPromise, sleep(2000)]);
  }
}

async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      await new Promise((resolve, reject) => { s.once('error', reject); s.listen(0, '127.0.0.1', resolve); });
      servers.push(s);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** One small loopback request; resolves {status, body} or {status: 0, error}, never rejects. */
function httpJson(port, method, urlPath, body, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const headers = payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {};
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { if (text.length < 1_000_000) text += d; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, body: json, text });
      });
      res.on('error', (err) => resolve({ status: 0, error: err.code || err.message }));
    });
    req.on('error', (err) => resolve({ status: 0, error: err.code || err.message }));
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.end(payload);
  });
}

/** Polls until `check()` is truthy, the child exits, or `timeoutMs` passes. */
async function waitUntil(check, c, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (c && c.exited) return false;
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/sbin', '/usr/local/sbin', '/sbin'])) {
    const p = path.join(dir, cmd);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

function tail(text, n = 2000) {
  const s = (text || '').trim();
  return s.length > n ? `…${s.slice(-n)}` : s;
}

module.exports = {
  ROOT, sleep, installExitHandlers, startChild, forkChild, stopChild, killAllSync, freePorts, httpJson, waitUntil, which, tail,
};
