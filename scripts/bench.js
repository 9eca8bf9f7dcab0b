#!/usr/bin/env node
'use strict';
/*
 * tollgate side-by-side benchmark (issue 6).
 *
 *   npm run bench                       full run: 3 alternating rounds of every system per load
 *                                       scenario (2 s warm-up + 3 s each), then the latency
 *                                       rounds; ~4½ min on 2 cores
 *   node scripts/bench.js --quick       1 round of 1 s runs, no warm-up, for CI (~25 s)
 *
 * Options:
 *   --rounds N          rounds per load scenario (default 3, quick 1). Each round runs every
 *                       selected system once, in canonical order on even rounds and reversed
 *                       on odd ones, so no system always runs first or last. A row gives the
 *                       medians over its OK rounds, and "× http-proxy" is the median of the
 *                       per-round ratios (req/s ÷ http-proxy's req/s in the same round): on a
 *                       shared, noisy machine one run per system swings by ±10-25 %
 *   --duration N        measured seconds per load run (default 3, quick 1)
 *   --warmup N          warm-up seconds per run, load and latency (default 2, quick 0: JIT tiers settle in the first seconds)
 *   --connections N     concurrent connections (default 50)
 *   --threads N         wrk threads (default 1: on 2 cores the client should stay light)
 *   --loadgen wrk|autocannon   closed-loop load tool (default wrk if installed)
 *   --systems a,b       subset of: direct,http-proxy,rlflex,fastify,tollgate (the default),
 *                       forward-node,forward-undici (references, opt-in only: the least a
 *                       forwarder does, on node:http and on undici; no auth, no limiting)
 *   --scenarios a,b     subset of: allowed-1key,allowed-1000keys,rejected,latency, and
 *                       tls (opt-in, ~4 min: tollgate and forward-undici over plain HTTP,
 *                       HTTPS/1.1, h2 (h2load: 10 streams on each of 5 connections, and 50
 *                       on one) and a new TLS connection per request, a server answering
 *                       from memory over plain HTTP and HTTPS/1.1, then a certificate
 *                       swap under load; scripts/bench/tls-scenario.js)
 *   --latency-factor F  fixed rate of the latency scenario as a fraction of bare
 *                       http-proxy's max req/s in allowed-1key (its median over the
 *                       rounds; default 0.6)
 *   --latency-rate N    fixed rate in req/s (overrides --latency-factor)
 *   --latency-rounds N  alternating http-proxy/tollgate latency runs (default 3, quick 1);
 *                       the table gives medians, and "p99 added" is the median of the
 *                       per-round differences
 *   --latency-duration N  measured seconds per latency run (default duration/2 but at
 *                       least 3 when there are several rounds, else duration)
 *   --node-upstream     use the Node upstream even if nginx is installed
 *   --build             run `npm run build` before starting tollgate even if dist/main.js exists
 *   --out DIR           where latest.json / latest.md go (default bench-results/)
 *   --keep-tmp          keep the temp dir (configs, logs) for debugging
 *   --render            no load: rewrite latest.md from latest.json in --out (after a change
 *                       to the report's layout or to the targets table)
 *   --variant NAME:K=V[,K=V]  an extra system "tollgate-NAME": tollgate with these settings
 *                       on top of the others, run in the same rounds as plain tollgate so the
 *                       two compare within one run (repeatable; e.g.
 *                       --variant auto:HEALTH_MODE=auto,CONCURRENCY_LIMIT=auto). A row's
 *                       "× tollgate" in the log is its median per-round ratio to plain tollgate
 *   --tollgate-env K=V  extra setting for the gateway, repeatable (e.g. WORKERS=2); the
 *                       gateway's settings are otherwise never inherited from the shell
 *   --path P            the request path of every system's load (default /), e.g. one
 *                       that only the last of 100 routes matches (docs/routes.md)
 *   --pin               the system under test on CPU 1, everything else (the harness, the
 *                       load generator, the upstream, Redis) on CPU 0 (taskset): the system
 *                       is then the bottleneck on a core of its own, so a ratio between two
 *                       systems (or variants) is the ratio of their own costs, not of how the
 *                       scheduler shared 2 cores among 5 busy processes that run. Needs ≥ 2
 *                       CPUs and taskset; a multi-process system (WORKERS>1) gets one core too
 *
 * Everything (upstream, Redis, each system under test) runs as its own child process on
 * free loopback ports; each system is started fresh for each run after a Redis FLUSHALL,
 * so no run sees another's keys. All numbers compare within one run: report ratios.
 * Every round's raw row is kept in latest.json (`rounds`, and `ratioByRound` for the load
 * scenarios).
 */
const fs = require('fs');
const os = require('os');
const net = require('net');
const http = require('http');
const path = require('path');
const { spawn, execFileSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const BENCH_DIR = path.join(__dirname, 'bench');
const DEFAULT_SYSTEMS = ['direct', 'http-proxy', 'rlflex', 'fastify', 'tollgate'];
const ALL_SYSTEMS = DEFAULT_SYSTEMS.concat('forward-node', 'forward-undici');
const LOAD_SCENARIOS = ['allowed-1key', 'allowed-1000keys', 'rejected'];
const LATENCY_SYSTEMS = ['http-proxy', 'tollgate'];
const ROTATING_KEYS = 1000;
const BASELINE = 'http-proxy';
// settings of SPEC §1 (stripped from the inherited environment when starting tollgate)
const TOLLGATE_ENV_NAMES = ['PORT', 'HOST', 'ADMIN_PORT', 'ADMIN_HOST', 'ADMIN_TOKEN', 'UPSTREAM_URL',
  'UPSTREAM_TIMEOUT_MS', 'STORE', 'REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS', 'REDIS_SENTINEL_NAME',
  'REDIS_KEY_PREFIX', 'STORE_TIMEOUT_MS', 'STORE_FAILURE_MODE', 'TIERS_FILE', 'KEYS_FILE', 'API_KEY_HEADER',
  'TRUST_PROXY', 'RATE_LIMIT_HEADERS', 'RATE_LIMIT_DRAFT_HEADERS', 'INVALID_KEY_LIMIT', 'INVALID_KEY_WINDOW_S',
  'IP_BLOCK_S', 'SHUTDOWN_TIMEOUT_MS', 'WORKERS', 'LOG_LEVEL', 'CONFIG_FILE'];
const SCRIPT_CMDS = ['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'];
const { runTlsScenario, tlsMarkdown, tlsTargets } = require('./bench/tls-scenario');

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const o = {
    quick: false, duration: null, warmup: null, rounds: null, connections: 50, threads: 1, loadgen: null,
    systems: DEFAULT_SYSTEMS.slice(), scenarios: LOAD_SCENARIOS.concat('latency'),
    latencyFactor: 0.6, latencyRate: null, latencyRounds: null, latencyDuration: null, nodeUpstream: false, build: false,
    out: path.join(ROOT, 'bench-results'), keepTmp: false, tollgateEnv: {}, variants: {}, path: '/', pin: false,
  };
  const need = (i) => {
    if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
    return argv[i + 1];
  };
  const num = (i) => {
    const v = Number(need(i));
    if (!Number.isFinite(v) || v < 0) throw new Error(`${argv[i]}: not a number: ${argv[i + 1]}`);
    return v;
  };
  const list = (i, allowed) => {
    const v = need(i).split(',').map((s) => s.trim()).filter(Boolean);
    for (const s of v) if (!allowed.includes(s)) throw new Error(`${argv[i]}: unknown ${s} (allowed: ${allowed.join(', ')})`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--quick': o.quick = true; break;
      case '--duration': o.duration = num(i); i++; break;
      case '--warmup': o.warmup = num(i); i++; break;
      case '--rounds': o.rounds = Math.max(1, Math.round(num(i))); i++; break;
      case '--connections': o.connections = Math.max(1, Math.round(num(i))); i++; break;
      case '--threads': o.threads = Math.max(1, Math.round(num(i))); i++; break;
      case '--loadgen': o.loadgen = need(i); i++;
        if (!['wrk', 'autocannon'].includes(o.loadgen)) throw new Error('--loadgen: wrk or autocannon');
        break;
      case '--systems': o.systems = list(i, ALL_SYSTEMS); i++; break;
      case '--scenarios': o.scenarios = list(i, LOAD_SCENARIOS.concat('latency', 'tls')); i++; break;
      case '--latency-factor': o.latencyFactor = num(i); i++; break;
      case '--latency-rate': o.latencyRate = num(i); i++; break;
      case '--latency-rounds': o.latencyRounds = Math.max(1, Math.round(num(i))); i++; break;
      case '--latency-duration': o.latencyDuration = num(i); i++; break;
      case '--node-upstream': o.nodeUpstream = true; break;
      case '--build': o.build = true; break;
      case '--out': o.out = path.resolve(need(i)); i++; break;
      case '--keep-tmp': o.keepTmp = true; break;
      case '--render': o.render = true; break;
      case '--pin': o.pin = true; break;
      case '--variant': {
        const m = /^([a-z0-9_-]+):(.+)$/s.exec(need(i));
        if (!m) throw new Error('--variant: expected NAME:K=V[,K=V]');
        const env = {};
        for (const kv of m[2].split(',')) {
          const e = /^([A-Z0-9_]+)=(.*)$/s.exec(kv);
          if (!e) throw new Error(`--variant ${m[1]}: expected K=V, got ${kv}`);
          env[e[1]] = e[2];
        }
        o.variants[`tollgate-${m[1]}`] = env;
        i++;
        break;
      }
      case '--path':
        o.path = need(i);
        if (!/^\/[\x21-\x7e]*$/.test(o.path)) throw new Error('--path: expected a path starting with /');
        i++;
        break;
      case '--tollgate-env': {
        const m = /^([A-Z0-9_]+)=(.*)$/s.exec(need(i));
        if (!m) throw new Error('--tollgate-env: expected NAME=value');
        o.tollgateEnv[m[1]] = m[2];
        i++;
        break;
      }
      case '-h': case '--help':
        process.stdout.write(/\/\*([\s\S]*?)\*\//.exec(fs.readFileSync(__filename, 'utf8'))[1].replace(/^ \* ?/gm, '').trim() + '\n');
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  // 3 rounds × 15 load runs of ~5.5 s (2 + 3 s plus start/stop) + 6 latency runs: ~4½ min
  if (o.duration === null) o.duration = o.quick ? 1 : 3;
  if (o.warmup === null) o.warmup = o.quick ? 0 : 2;
  if (o.rounds === null) o.rounds = o.quick ? 1 : 3;
  if (o.latencyRounds === null) o.latencyRounds = o.quick ? 1 : 3;
  // a fixed-rate p99 needs a few seconds of samples, whatever the load runs' length
  if (o.latencyDuration === null) o.latencyDuration = o.latencyRounds > 1 ? Math.max(3, Math.round(o.duration / 2)) : o.duration;
  if (o.duration < 1) throw new Error('--duration must be at least 1');
  if (o.latencyDuration < 1) throw new Error('--latency-duration must be at least 1');
  // keep the systems in canonical order (baseline before the others)
  o.systems = ALL_SYSTEMS.filter((s) => o.systems.includes(s)).concat(Object.keys(o.variants));
  return o;
}

// ---------------------------------------------------------------- small utils

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`);

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/sbin', '/usr/local/sbin', '/sbin'])) {
    const p = path.join(dir, cmd);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

let CLK_TCK = 100;
try { CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { /* default */ }

async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      await new Promise((res, rej) => { s.once('error', rej); s.listen(0, '127.0.0.1', res); });
      servers.push(s);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

function httpGet(port, p, headers, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { if (body.length < 2000) body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
    });
    req.on('error', (e) => resolve({ status: 0, error: e.code || e.message }));
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
  });
}

// ---------------------------------------------------------------- /proc readers

function readStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0] = field 3 (state); utime = field 14, stime = 15, cutime 16, cstime 17
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) };
  } catch { return null; }
}

function processTree(rootPid) {
  if (!rootPid) return [];
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = readStat(d);
    if (!st) continue;
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(Number(d));
  }
  const out = [];
  const stack = [rootPid];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    for (const c of children.get(p) || []) stack.push(c);
  }
  return out;
}

/** CPU ticks (utime+stime) of the process tree, keyed by pid so exits/forks are handled. */
function treeTicks(rootPid) {
  const m = new Map();
  for (const p of processTree(rootPid)) {
    const st = readStat(p);
    if (st) m.set(p, st.utime + st.stime);
  }
  return m;
}

function ticksDeltaUs(before, after) {
  let t = 0;
  for (const [pid, v] of after) t += v - (before.get(pid) || 0);
  return (t * 1e6) / CLK_TCK;
}

function treeRssKb(rootPid) {
  let kb = 0;
  for (const p of processTree(rootPid)) {
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch { /* gone */ }
  }
  return kb;
}

/** Machine-wide busy/steal jiffies from /proc/stat. */
function machineTicks() {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line;
  return { busy: user + nice + system + irq + softirq, steal: steal || 0, idle: idle + (iowait || 0) };
}

function selfChildTicks() {
  const st = readStat(process.pid);
  return st ? st.cutime + st.cstime : 0;
}

function selfTicks() {
  const st = readStat(process.pid);
  return st ? st.utime + st.stime : 0;
}

// ---------------------------------------------------------------- child processes

const children = new Set();
let shuttingDown = false;

/** CPU the system under test runs on with --pin (every other process inherits the harness's CPU 0). */
const SYSTEM_CPU = '1';
/** With --pin, taskset's path; null otherwise. */
let taskset = null;

/** With --pin: this process (and so every child it starts) on CPU 0. */
function pinHarness() {
  if (os.cpus().length < 2) throw new Error('--pin needs at least 2 CPUs');
  const found = which('taskset');
  if (!found) throw new Error('--pin needs taskset (util-linux)');
  execFileSync(found, ['-pc', '0', String(process.pid)], { stdio: 'ignore' });
  taskset = found;
}

/** The command line of a system under test: on its own CPU with --pin (taskset execs it: same pid). */
function systemCommand(cmd, args) {
  return taskset ? [taskset, ['-c', SYSTEM_CPU, cmd, ...args]] : [cmd, args];
}

/**
 * Spawn a child in its own process group (so nginx workers / cluster workers die with it).
 * stdout (unless `stdoutFile`) and stderr are kept (last 16 KB) for error reports; `readyLine` resolves `ready`.
 */
function startChild(name, cmd, args, opts = {}) {
  if (shuttingDown) throw new Error('shutting down');
  // A system's stdout (its access log: ~2 MB/s under load) goes to a file when asked, so the
  // harness does not read it on the cores the benchmark measures.
  const out = opts.stdoutFile ? fs.openSync(opts.stdoutFile, 'w') : 'pipe';
  const child = spawn(cmd, args, {
    cwd: opts.cwd || ROOT,
    env: opts.env || process.env,
    stdio: ['ignore', out, 'pipe'],
    detached: true,
  });
  if (typeof out === 'number') fs.closeSync(out);
  const c = { name, child, pid: child.pid, output: '', exited: false, exitCode: null, signal: null };
  let readyResolve;
  c.ready = new Promise((r) => { readyResolve = r; });
  const onData = (d) => {
    c.output += d.toString();
    if (c.output.length > 16384) c.output = c.output.slice(-16384);
    if (opts.readyLine && opts.readyLine.test(c.output)) readyResolve(true);
  };
  if (child.stdout) child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  c.exitedPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      c.exited = true; c.exitCode = code; c.signal = signal;
      readyResolve(false);
      resolve();
    });
    child.on('error', (e) => {
      c.output += `\nspawn error: ${e.message}`;
      c.exited = true; c.exitCode = -1;
      readyResolve(false);
      resolve();
    });
  });
  children.add(c);
  c.exitedPromise.then(() => {
    // the group may still hold grandchildren (e.g. nginx workers): make sure they go too
    try { process.kill(-c.pid, 'SIGKILL'); } catch { /* none left */ }
    children.delete(c);
  });
  return c;
}

function killGroup(c, sig) {
  try { process.kill(-c.pid, sig); } catch {
    try { process.kill(c.pid, sig); } catch { /* gone */ }
  }
}

/** SIGTERM, wait up to graceMs, then SIGKILL. Returns {ms, killed}. */
async function stopChild(c, graceMs = 3000) {
  if (!c || c.exited) return { ms: 0, killed: false };
  const t0 = Date.now();
  killGroup(c, 'SIGTERM');
  const done = await Promise.race([c.exitedPromise.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    killGroup(c, 'SIGKILL');
    await Promise.race([c.exitedPromise, sleep(2000)]);
  }
  return { ms: Date.now() - t0, killed: !done };
}

function killAllSync() {
  for (const c of children) killGroup(c, 'SIGKILL');
}

function tail(s, n = 1200) {
  s = (s || '').trim();
  return s.length > n ? `…${s.slice(-n)}` : s;
}

// ---------------------------------------------------------------- infrastructure

async function startUpstream(tmp, opts) {
  const [port] = await freePorts(1);
  const nginx = !opts.nodeUpstream && (fs.existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : which('nginx'));
  if (nginx) {
    const dir = path.join(tmp, 'nginx');
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const conf = `# generated by scripts/bench.js
worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 75s;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:${port} reuseport;
    location / {
      default_type text/plain;
      return 200 "ok";
    }
  }
}
`;
    fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
    const c = startChild('nginx', nginx, ['-p', `${dir}/`, '-c', `${dir}/nginx.conf`, '-e', `${dir}/logs/error.log`]);
    if (await waitHttp(port, '/', c, 10000)) return { kind: `nginx (${nginxVersion(nginx)}, 1 worker)`, port, proc: c };
    const err = tail(c.output + readIf(path.join(dir, 'logs/error.log')));
    await stopChild(c);
    log(`nginx failed to start, using the Node upstream instead: ${err}`);
  }
  const c = startChild('upstream', process.execPath, [path.join(BENCH_DIR, 'upstream-server.js')], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' }, readyLine: /ready/,
  });
  if (!(await waitHttp(port, '/', c, 10000))) throw new Error(`upstream did not start: ${tail(c.output)}`);
  return { kind: 'node http server', port, proc: c };
}

function nginxVersion(bin) {
  try {
    const r = require('child_process').spawnSync(bin, ['-v'], { encoding: 'utf8' });
    return (r.stderr || r.stdout || '').trim().replace(/^nginx version: /, '');
  } catch { return 'nginx'; }
}

function readIf(f) { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } }

async function waitHttp(port, p, c, timeoutMs, headers, okStatus) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (c && c.exited) return false;
    const r = await httpGet(port, p, headers, 1000);
    if (r.status && (!okStatus || r.status === okStatus)) return true;
    await sleep(100);
  }
  return false;
}

async function startRedis(tmp) {
  const bin = which('redis-server');
  if (!bin) throw new Error('redis-server not found on PATH');
  const [port] = await freePorts(1);
  const dir = path.join(tmp, 'redis');
  fs.mkdirSync(dir, { recursive: true });
  const c = startChild('redis', bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'], { readyLine: /Ready to accept connections|ready to accept/i });
  const Redis = require('ioredis');
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline && !c.exited) {
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      const version = (/redis_version:(\S+)/.exec(await client.info('server')) || [])[1];
      return { port, url: `redis://127.0.0.1:${port}`, proc: c, client, version };
    } catch {
      client.disconnect();
      await sleep(100);
    }
  }
  throw new Error(`redis-server did not start: ${tail(c.output)}`);
}

async function redisCommandCalls(client) {
  const info = await client.info('commandstats');
  let total = 0;
  const by = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (m[1] === 'info') continue; // our own probes
    total += Number(m[2]);
    by[m[1]] = Number(m[2]);
  }
  return { total, by };
}

// ---------------------------------------------------------------- config files for the systems

function writeConfigs(tmp) {
  const tiers = {
    windowSeconds: 60,
    algorithm: 'sliding-window',
    tiers: {
      bench: { limit: 100000000, burst: 100000000 },
      tiny: { limit: 1, burst: 1 },
    },
  };
  const pad = (n) => String(n).padStart(7, '0');
  const benchKeys = [];
  for (let i = 1; i <= ROTATING_KEYS; i++) benchKeys.push(`bench_key_${pad(i)}`);
  const tinyKey = 'tiny_key_0000001';
  const keys = {
    keys: benchKeys.map((key, i) => ({ key, tier: 'bench', name: `k${i + 1}` }))
      .concat([{ key: tinyKey, tier: 'tiny', name: 'tiny1' }]),
  };
  const tiersFile = path.join(tmp, 'tiers.json');
  const keysFile = path.join(tmp, 'keys.json');
  fs.writeFileSync(tiersFile, JSON.stringify(tiers, null, 2));
  fs.writeFileSync(keysFile, JSON.stringify(keys, null, 2));
  return { tiersFile, keysFile, oneKey: benchKeys[0], rotatingKeys: benchKeys, tinyKey };
}

// ---------------------------------------------------------------- systems under test

async function ensureTollgateBuilt(opts) {
  const main = path.join(ROOT, 'dist', 'main.js');
  if (fs.existsSync(main) && !opts.build) return { ok: true };
  log(opts.build ? 'building tollgate (npm run build)…' : 'dist/main.js missing: running npm run build…');
  const npm = which('npm') || 'npm';
  const c = startChild('npm-build', npm, ['run', 'build']);
  const timer = setTimeout(() => killGroup(c, 'SIGKILL'), 300000);
  await c.exitedPromise;
  clearTimeout(timer);
  if (c.exitCode !== 0) return { ok: false, error: `npm run build failed (exit ${c.exitCode ?? c.signal}): ${tail(c.output, 800)}` };
  if (!fs.existsSync(main)) return { ok: false, error: 'npm run build succeeded but dist/main.js does not exist' };
  return { ok: true, built: true };
}

/** Start one system under test; returns {pid, port, proc, info} or throws with a reason. */
async function startSystem(name, ctx) {
  const { upstream, redis, cfg } = ctx;
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  if (name === 'direct') return { pid: upstream.proc.pid, port: upstream.port, proc: null };

  const [port, adminPort] = await freePorts(2);
  const common = {
    ...process.env,
    PORT: String(port), HOST: '127.0.0.1', UPSTREAM_URL: upstreamUrl, REDIS_URL: redis.url,
    BENCH_TIERS_FILE: cfg.tiersFile, BENCH_KEYS_FILE: cfg.keysFile,
  };
  let c;
  let ready;
  if (name === 'tollgate' || name in ctx.opts.variants) {
    // the gateway's own settings come only from here (+ --tollgate-env), never from the
    // caller's shell, so a stray CONFIG_FILE or WORKERS does not change the benchmark
    const inherited = { ...process.env };
    for (const k of TOLLGATE_ENV_NAMES) delete inherited[k];
    const env = {
      ...inherited,
      UPSTREAM_URL: upstreamUrl, PORT: String(port), HOST: '127.0.0.1',
      ADMIN_PORT: String(adminPort), ADMIN_HOST: '127.0.0.1', REDIS_URL: redis.url,
      LOG_LEVEL: 'warn', TIERS_FILE: cfg.tiersFile, KEYS_FILE: cfg.keysFile,
      ...ctx.opts.tollgateEnv,
      ...(ctx.opts.variants[name] || {}),
    };
    c = startChild(name, ...systemCommand(process.execPath, [path.join(ROOT, 'dist', 'main.js')]), { env, stdoutFile: path.join(ctx.tmp, `${name}.stdout.log`) });
    ready = () => waitHttp(adminPort, '/readyz', c, 30000, undefined, 200);
  } else {
    const file = {
      'http-proxy': 'http-proxy-server.js', rlflex: 'rlflex-server.js', fastify: 'fastify-server.js',
      'forward-node': 'forward-node-server.js', 'forward-undici': 'forward-undici-server.js',
    }[name];
    c = startChild(name, ...systemCommand(process.execPath, [path.join(BENCH_DIR, file)]), { env: common, readyLine: /\bready\b/ });
    ready = async () => (await Promise.race([c.ready, sleep(20000).then(() => false)])) && waitHttp(port, '/', c, 5000);
  }
  const ok = await ready();
  if (!ok) {
    const why = c.exited ? `exited (code ${c.exitCode ?? c.signal})` : 'not ready within the timeout';
    await stopChild(c, 1000);
    const e = new Error(`${name} did not start: ${why}${c.output.trim() ? `: ${tail(c.output, 800)}` : ''}`);
    e.startFailure = true;
    throw e;
  }
  return { pid: c.pid, port, adminPort, proc: c };
}

// ---------------------------------------------------------------- load generators

function wrkScript(tmp, keys) {
  const f = path.join(tmp, `wrk-${keys ? 'rotate' : 'static'}.lua`);
  if (fs.existsSync(f)) return f;
  const lua = `-- generated by scripts/bench.js: per-status counts${keys ? ' and rotating x-api-key' : ''}
local threads = {}
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  table.insert(threads, thread)
end
${keys ? `local keys = {${keys.map((k) => `"${k}"`).join(',')}}
local reqs = {}
local idx = 0
function init(args)
  statuses = {}
  for i, k in ipairs(keys) do
    reqs[i] = wrk.format("GET", wrk.path, { ["Host"] = wrk.headers["Host"] or wrk.host, ["x-api-key"] = k })
  end
  idx = ((tid or 1) * 137) % #reqs
end
function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end` : `function init(args)
  statuses = {}
end`}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    local st = t:get("statuses")
    if st then
      for k, v in pairs(st) do agg[k] = (agg[k] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%d":%d', k, v)) end
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests":%d,"durationUs":%d,"p50Us":%f,"p90Us":%f,"p99Us":%f,"maxUs":%f,"meanUs":%f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"statuses":{%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ",")))
end
`;
  fs.writeFileSync(f, lua);
  return f;
}

function runProcess(name, cmd, args, timeoutMs, onLine) {
  return new Promise((resolve) => {
    const c = startChild(name, cmd, args);
    let buf = '';
    c.child.stdout.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (onLine) onLine(line);
      }
    });
    const timer = setTimeout(() => killGroup(c, 'SIGKILL'), timeoutMs);
    c.exitedPromise.then(() => {
      clearTimeout(timer);
      if (buf && onLine) onLine(buf);
      resolve(c);
    });
  });
}

/**
 * One closed-loop load run. `measure` is {begin(), end()} called around the measured
 * window. Returns {requests, reqPerSec, p50Ms, p99Ms, statuses, errors, tool, loadgenCpuUs}.
 */
async function closedLoop(ctx, port, headers, keys, measure) {
  const { opts, tmp } = ctx;
  const url = `http://127.0.0.1:${port}${opts.path}`;
  if (ctx.loadgen === 'wrk') {
    const script = wrkScript(tmp, keys);
    const args = (d) => ['-t', String(opts.threads), '-c', String(opts.connections), '-d', `${d}s`, '--timeout', '5s', '-s', script,
      ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
    if (opts.warmup > 0) {
      const w = await runProcess('wrk-warmup', ctx.wrk, args(opts.warmup), (opts.warmup + 20) * 1000);
      if (w.exitCode !== 0) throw new Error(`wrk warm-up failed: ${tail(w.output, 400)}`);
    }
    const c0 = selfChildTicks();
    measure.begin();
    let result = null;
    const c = await runProcess('wrk', ctx.wrk, args(opts.duration), (opts.duration + 20) * 1000, (line) => {
      if (line.startsWith('BENCHJSON ')) result = JSON.parse(line.slice(10));
    });
    await measure.end();
    const loadgenCpuUs = ((selfChildTicks() - c0) * 1e6) / CLK_TCK;
    if (c.exitCode !== 0 || !result) throw new Error(`wrk failed (exit ${c.exitCode ?? c.signal}): ${tail(c.output, 400)}`);
    const statuses = result.statuses;
    const completed = Object.values(statuses).reduce((a, b) => a + b, 0);
    return {
      tool: `wrk -t${opts.threads} -c${opts.connections}`,
      requests: completed,
      durationS: result.durationUs / 1e6,
      reqPerSec: completed / (result.durationUs / 1e6),
      p50Ms: result.p50Us / 1000, p90Ms: result.p90Us / 1000, p99Ms: result.p99Us / 1000, maxMs: result.maxUs / 1000,
      statuses,
      errors: result.errors,
      loadgenCpuUs,
    };
  }
  const cfg = { url, connections: opts.connections, duration: opts.duration, warmup: opts.warmup, headers, keys };
  return runNodeLoad(ctx, 'autocannon-runner.js', cfg, measure, opts.warmup + opts.duration + 30);
}

async function runNodeLoad(ctx, file, cfg, measure, timeoutS) {
  let result = null;
  let endP = null;
  let began = false;
  const c = await runProcess(file, process.execPath, [path.join(BENCH_DIR, file), JSON.stringify(cfg)], timeoutS * 1000, (line) => {
    if (line === 'MEASURE_START') { began = true; measure.begin(); } else if (line === 'MEASURE_END' && began && !endP) {
      endP = measure.end();
    } else if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7));
  });
  if (began && !endP) endP = measure.end();
  if (endP) await endP;
  if (c.exitCode !== 0 || !result) throw new Error(`${file} failed (exit ${c.exitCode ?? c.signal}): ${tail(c.output, 400)}`);
  return result;
}

// ---------------------------------------------------------------- one run

function expectedStatus(system, scenario) {
  if (system === 'direct' || system === 'http-proxy') return 200;
  return scenario === 'rejected' ? 429 : 200;
}

async function prime(port, headers, n, requestPath = '/') {
  const out = {};
  for (let i = 0; i < n; i++) {
    const r = await httpGet(port, requestPath, headers, 3000);
    const k = r.status || `error:${r.error}`;
    out[k] = (out[k] || 0) + 1;
  }
  return out;
}

async function runOne(ctx, system, scenario, durationS) {
  const { cfg, redis, upstream, opts } = ctx;
  const row = { system, scenario, ok: false };
  if (ctx.failed[system]) {
    row.error = ctx.failed[system];
    return row;
  }
  const latency = scenario === 'latency';
  let headers = { 'x-api-key': cfg.oneKey };
  let keys = null;
  if (scenario === 'allowed-1000keys') { headers = {}; keys = cfg.rotatingKeys; }
  if (scenario === 'rejected') headers = { 'x-api-key': cfg.tinyKey };

  await redis.client.flushall();
  let sys = null;
  try {
    const t0 = Date.now();
    sys = await startSystem(system, ctx);
    row.startMs = Date.now() - t0;
    // sanity probe (and for `rejected`: use the limit-1 key up before any measurement)
    const primeHeaders = keys ? { 'x-api-key': keys[0] } : headers;
    row.probeStatuses = await prime(sys.port, primeHeaders, scenario === 'rejected' ? 3 : 1, ctx.opts.path);

    const snap = {};
    const measure = {
      begin() {
        snap.t = process.hrtime.bigint();
        snap.server = treeTicks(sys.pid);
        snap.redis = treeTicks(redis.proc.pid);
        snap.upstream = treeTicks(upstream.proc.pid);
        snap.self = selfTicks();
        snap.machine = machineTicks();
        snap.redisCalls = redisCommandCalls(redis.client).catch(() => null);
      },
      async end() {
        const wallS = Number(process.hrtime.bigint() - snap.t) / 1e9;
        const server = ticksDeltaUs(snap.server, treeTicks(sys.pid));
        const redisCpu = ticksDeltaUs(snap.redis, treeTicks(redis.proc.pid));
        const upstreamCpu = ticksDeltaUs(snap.upstream, treeTicks(upstream.proc.pid));
        const selfUs = ((selfTicks() - snap.self) * 1e6) / CLK_TCK;
        const m = machineTicks();
        const before = (await snap.redisCalls) || { total: NaN, by: {} };
        const after = (await redisCommandCalls(redis.client).catch(() => null)) || { total: NaN, by: {} };
        snap.out = {
          wallS, server, redisCpu, upstreamCpu, selfUs,
          machineBusyUs: ((m.busy - snap.machine.busy) * 1e6) / CLK_TCK,
          stealUs: ((m.steal - snap.machine.steal) * 1e6) / CLK_TCK,
          redisCalls: after.total - before.total,
          redisByCmd: Object.fromEntries(Object.entries(after.by)
            .map(([k, v]) => [k, v - (before.by[k] || 0)]).filter(([, v]) => v > 0)),
        };
      },
    };

    let load;
    if (latency) {
      const d = durationS || opts.duration;
      const cfgL = { url: `http://127.0.0.1:${sys.port}${opts.path}`, rate: ctx.latencyRate, duration: d, warmup: opts.warmup, connections: opts.connections, headers };
      load = await runNodeLoad(ctx, 'paced-load.js', cfgL, measure, opts.warmup + d + 40);
    } else {
      load = await closedLoop(ctx, sys.port, headers, keys, measure);
    }
    const s = snap.out;
    if (!s) throw new Error('measurement window was not recorded');
    row.rssMB = treeRssKb(sys.pid) / 1024;
    const n = load.requests || 0;
    Object.assign(row, {
      ok: n > 0,
      tool: load.tool,
      requests: n,
      durationS: round(load.durationS, 3),
      reqPerSec: round(load.reqPerSec, 1),
      p50Ms: round(load.p50Ms, 3),
      p90Ms: round(load.p90Ms, 3),
      p99Ms: round(load.p99Ms, 3),
      maxMs: round(load.maxMs, 3),
      statuses: load.statuses,
      errors: load.errors,
      cpuUsPerReq: n ? round(s.server / n, 1) : null,
      serverCpuCores: round(s.server / 1e6 / s.wallS, 2),
      rssMB: round(row.rssMB, 1),
      redisCmdsPerReq: n ? round(s.redisCalls / n, 3) : null,
      // script invocations (EVAL/EVALSHA/FCALL): each is one round trip whose inner commands
      // are also counted in redisCmdsPerReq
      redisScriptCallsPerReq: n ? round(SCRIPT_CMDS.reduce((a, c) => a + (s.redisByCmd[c] || 0), 0) / n, 3) : null,
      redisCmdBreakdown: s.redisByCmd,
      redisCpuUsPerReq: n ? round(s.redisCpu / n, 1) : null,
      upstreamCpuUsPerReq: system === 'direct' ? null : (n ? round(s.upstreamCpu / n, 1) : null),
      loadgenCpuUsPerReq: load.loadgenCpuUs !== undefined && n ? round(load.loadgenCpuUs / n, 1) : null,
      // CPU used during the window by processes that are not part of this benchmark
      // (other users of the shared machine); an indicator of noise, in cores.
      otherLoadCores: null,
      stealCores: round(s.stealUs / 1e6 / s.wallS, 2),
    });
    if (latency) {
      Object.assign(row, {
        targetRate: round(load.targetRate, 1), skipped: load.skipped,
        correctedP50Ms: round(load.corrected.p50Ms, 3), correctedP99Ms: round(load.corrected.p99Ms, 3),
      });
    }
    const ours = (system === 'direct' ? 0 : s.server) + s.redisCpu + s.upstreamCpu + s.selfUs + (load.loadgenCpuUs || 0);
    row.otherLoadCores = load.loadgenCpuUs !== undefined ? round(Math.max(0, s.machineBusyUs - ours) / 1e6 / s.wallS, 2) : null;
    if (latency && row.reqPerSec < 0.97 * ctx.latencyRate) {
      row.saturated = true;
      row.warning = `did not keep up with the target rate (${fmt(row.reqPerSec)} req/s): saturated, latency is queueing`;
    }
    const exp = expectedStatus(system, scenario);
    row.expectedStatus = exp;
    row.expectedShare = n ? round((load.statuses[exp] || 0) / n, 4) : 0;
    if (row.expectedShare < 0.99) {
      row.warning = `${row.warning ? `${row.warning}; ` : ''}only ${(row.expectedShare * 100).toFixed(1)}% of responses were ${exp}`;
    }
  } catch (e) {
    row.ok = false;
    row.error = e.message;
    if (e.startFailure) ctx.failed[system] = e.message;
    log(`${system}/${scenario}: ${e.message}`);
  } finally {
    if (sys && sys.proc) {
      const st = await stopChild(sys.proc, 3000);
      row.stopMs = st.ms;
      if (st.killed) row.stopNote = 'did not exit within 3 s of SIGTERM; killed';
    }
  }
  return row;
}

function median(xs) {
  const v = xs.filter((x) => x !== null && x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// per-round numbers a row reports as the median over its OK rounds
const MEDIAN_KEYS = ['reqPerSec', 'p50Ms', 'p90Ms', 'p99Ms', 'cpuUsPerReq', 'serverCpuCores', 'rssMB',
  'redisCmdsPerReq', 'redisScriptCallsPerReq', 'redisCpuUsPerReq', 'upstreamCpuUsPerReq', 'loadgenCpuUsPerReq',
  'otherLoadCores', 'stealCores', 'startMs', 'stopMs'];
const LATENCY_MEDIAN_KEYS = ['targetRate', 'correctedP50Ms', 'correctedP99Ms'];

/** Round i's system order: canonical on even rounds, reversed on odd ones, so no system
 * always runs first or last (drift of the shared machine spreads over all of them). */
function roundOrder(systems, i) {
  return i % 2 ? systems.slice().reverse() : systems;
}

/** wrk reports socket errors by kind ({connect, read, …}), the Node load tools as a count. */
function sumErrors(rows) {
  let total = null;
  for (const r of rows) {
    if (typeof r.errors === 'number') total = (total || 0) + r.errors;
    else if (r.errors && typeof r.errors === 'object') {
      total = total && typeof total === 'object' ? total : {};
      for (const [k, v] of Object.entries(r.errors)) total[k] = (total[k] || 0) + v;
    }
  }
  return total;
}

function sumCounts(objs) {
  const out = {};
  for (const o of objs) for (const [k, v] of Object.entries(o || {})) out[k] = (out[k] || 0) + v;
  return out;
}

/** One row per (system, scenario) from its rounds: medians, summed counts, warnings. */
function aggregateRounds(system, scenario, rows) {
  const ok = rows.filter((r) => r.ok);
  const out = { system, scenario, ok: ok.length > 0, roundsOk: ok.length, rounds: rows };
  if (!ok.length) {
    out.error = rows.length ? rows[0].error : 'no rounds ran';
    return out;
  }
  out.tool = ok[0].tool;
  const keys = scenario === 'latency' ? LATENCY_MEDIAN_KEYS.concat(MEDIAN_KEYS) : MEDIAN_KEYS;
  for (const k of keys) out[k] = round(median(ok.map((r) => r[k])), 3);
  out.maxMs = round(Math.max(...ok.map((r) => r.maxMs || 0)), 3);
  out.requests = ok.reduce((a, r) => a + r.requests, 0);
  out.durationS = round(ok.reduce((a, r) => a + (r.durationS || 0), 0), 3);
  out.statuses = sumCounts(ok.map((r) => r.statuses));
  out.errors = sumErrors(ok);
  out.redisCmdBreakdown = sumCounts(ok.map((r) => r.redisCmdBreakdown));
  const warnings = [];
  if (ok.length < rows.length) {
    const bad = rows.find((r) => !r.ok);
    warnings.push(`${rows.length - ok.length}/${rows.length} rounds failed (round ${bad.round || rows.indexOf(bad) + 1}: ${short(bad.error)})`);
  }
  const exp = expectedStatus(system, scenario);
  out.expectedStatus = exp;
  out.expectedShare = out.requests ? round((out.statuses[exp] || 0) / out.requests, 4) : 0;
  const offRounds = ok.filter((r) => r.expectedShare < 0.99).length;
  if (out.expectedShare < 0.99) warnings.push(`only ${(out.expectedShare * 100).toFixed(1)}% of responses were ${exp}`);
  else if (offRounds) warnings.push(`${offRounds}/${ok.length} rounds had under 99% ${exp} responses`);
  const killed = rows.filter((r) => r.stopNote).length;
  if (killed) out.stopNote = `${killed}/${rows.length} runs did not exit within 3 s of SIGTERM; killed`;
  if (warnings.length) out.warning = warnings.join('; ');
  return out;
}

function addWarning(row, w, first = false) {
  if (!row.warning) row.warning = w;
  else row.warning = first ? `${w}; ${row.warning}` : `${row.warning}; ${w}`;
}

/**
 * One load row: the medians plus "× http-proxy" as the median of the per-round ratios. A
 * round runs every system within a few tens of seconds, so the ratio inside a round is much
 * steadier than a ratio of medians taken minutes apart. ratioByRound is index-aligned with
 * `rounds` (null where this system or http-proxy failed; such rounds are left out).
 */
function aggregateLoad(system, scenario, rows, baseRows) {
  const out = aggregateRounds(system, scenario, rows);
  if (!baseRows) {
    out.ratioByRound = null;
    out.ratioToHttpProxy = null;
    return out;
  }
  const raw = rows.map((r, i) => {
    const b = baseRows[i];
    return r.ok && b && b.ok && b.reqPerSec > 0 ? r.reqPerSec / b.reqPerSec : null;
  });
  out.ratioByRound = raw.map((x) => round(x, 3));
  out.ratioToHttpProxy = out.ok ? round(median(raw), 3) : null;
  const used = raw.filter((x) => x !== null).length;
  if (out.ok && system !== BASELINE && used < out.roundsOk) {
    addWarning(out, `× http-proxy from ${used}/${out.roundsOk} rounds (http-proxy failed in the others)`);
  }
  return out;
}

/** One latency row per system from its rounds: medians, summed counts, pairwise p99 added. */
function aggregateLatency(system, rows, baseRows) {
  const out = aggregateRounds(system, 'latency', rows);
  if (!out.ok) return out;
  out.skipped = rows.filter((r) => r.ok).reduce((a, r) => a + (r.skipped || 0), 0);
  const sat = rows.filter((r) => r.ok && r.saturated).length;
  if (sat) addWarning(out, `${sat}/${out.roundsOk} rounds did not keep up with the target rate (saturated)`, true);
  // p99 added over bare http-proxy: median of the per-round differences (rounds alternate
  // between the two systems, so each pair ran close in time on the shared machine)
  const diffs = [];
  rows.forEach((r, i) => {
    const b = baseRows[i];
    if (r.ok && b && b.ok) diffs.push(r.p99Ms - b.p99Ms);
  });
  out.p99AddedMs = diffs.length ? round(median(diffs), 3) : null;
  out.p99AddedByRound = diffs.map((d) => round(d, 3));
  return out;
}

function round(v, d) {
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

// ---------------------------------------------------------------- report

function fmt(v, d = 0) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

function statusStr(st) {
  if (!st) return '–';
  return Object.entries(st).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}:${v}`).join(' ');
}

/**
 * Issue 6's targets, each checked against this run's rows (null where a row is missing).
 * Peer margins are medians of per-round ratios (tollgate ÷ peer in the same round), like
 * "× http-proxy".
 */
function targets(report) {
  const row = (system, scenario) => report.results.find((r) => r.system === system && r.scenario === scenario && r.ok) || null;
  const vsPeer = (t, peer) => {
    if (!t || !peer || !t.ratioByRound || !peer.ratioByRound) return null;
    return median(t.ratioByRound.map((x, i) => (x != null && peer.ratioByRound[i] != null && peer.ratioByRound[i] > 0 ? x / peer.ratioByRound[i] : null)));
  };
  const out = [];
  const add = (target, value, met, digits = 2, unit = '') => out.push({ target, value: value == null ? null : round(value, digits), met: value == null ? null : met(value), unit });
  for (const scenario of ['allowed-1key', 'allowed-1000keys']) {
    const t = row('tollgate', scenario);
    const bare = row(BASELINE, scenario);
    add(`${scenario}: req/s ≥ 0.95× bare http-proxy`, t && t.ratioToHttpProxy, (v) => v >= 0.95);
    add(`${scenario}: ≥ 1.1× rate-limiter-flexible`, vsPeer(t, row('rlflex', scenario)), (v) => v >= 1.1);
    add(`${scenario}: ≥ 1.2× Fastify`, vsPeer(t, row('fastify', scenario)), (v) => v >= 1.2);
    add(`${scenario}: CPU over bare http-proxy ≤ 5 µs per request`, t && bare ? t.cpuUsPerReq - bare.cpuUsPerReq : null, (v) => v <= 5, 1, ' µs');
    add(`${scenario}: one Redis round trip per request (script calls per request)`, t && t.redisScriptCallsPerReq, (v) => Math.abs(v - 1) < 0.02);
  }
  const rejected = row('tollgate', 'rejected');
  add('rejected: req/s ≥ 3× bare http-proxy', rejected && rejected.ratioToHttpProxy, (v) => v >= 3);
  add('rejected: zero Redis commands per request', rejected && rejected.redisCmdsPerReq, (v) => v < 0.005, 3);
  const lat = report.latency.find((r) => r.system === 'tollgate' && r.ok);
  add('fixed rate: p99 added over bare http-proxy ≤ 0.5 ms', lat && lat.p99AddedMs, (v) => v <= 0.5, 2, ' ms');
  tlsTargets(report.tls, add);
  return out;
}

function markdown(report) {
  const L = [];
  const m = report.machine;
  L.push('# tollgate benchmark');
  L.push('');
  L.push(`${m.date} · ${m.cpuCount}× ${m.cpuModel} · ${m.os} · node ${m.node} · redis ${report.redisVersion || '?'} · upstream ${report.upstream}`);
  L.push(`load average ${m.loadAvgStart.join(' ')} at start, ${m.loadAvgEnd.join(' ')} at end`);
  const c = report.config;
  L.push(`load: ${c.loadgen}, ${c.connections} connections, ${c.warmup}s warm-up + ${c.duration}s measured per run${c.quick ? ' (--quick)' : ''}; ${c.rounds > 1 ? `each load row is the median of ${c.rounds} alternating rounds` : 'each load row is 1 run'}; total ${fmt(report.totalSeconds, 0)} s`);
  if (c.pinned) L.push('pinned (--pin): each system under test on CPU 1; harness, load generator, upstream and Redis on CPU 0');
  if (c.path && c.path !== '/') L.push(`request path: ${c.path}`);
  L.push('');
  if (report.results.length) {
    L.push('| system | scenario | req/s | × http-proxy | p50 ms | p99 ms | server CPU µs/req | RSS MB | redis cmds/req | redis CPU µs/req | statuses | notes |');
    L.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |');
    for (const r of report.results) {
      if (!r.ok) {
        L.push(`| ${r.system} | ${r.scenario} | FAILED | – | – | – | – | – | – | – | – | ${esc(short(r.error))} |`);
        continue;
      }
      const notes = [r.warning, errStr(r.errors), r.stopNote, r.otherLoadCores >= 0.3 ? `other load ${fmt(r.otherLoadCores, 2)} cores` : null].filter(Boolean).join('; ');
      L.push(`| ${r.system} | ${r.scenario} | ${fmt(r.reqPerSec)} | ${r.ratioToHttpProxy == null ? '–' : r.ratioToHttpProxy.toFixed(2)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.cpuUsPerReq, 1)} | ${fmt(r.rssMB, 0)} | ${redisCmds(r)} | ${fmt(r.redisCpuUsPerReq, 1)} | ${statusStr(r.statuses)} | ${esc(notes)} |`);
    }
  }
  if (report.latency.length) {
    L.push('');
    L.push(report.latencyRate
      ? `Fixed-rate latency (open loop, ${fmt(report.latencyRate)} req/s = ${report.latencyRateSource}; ${report.config.latencyRounds > 1 ? `median of ${report.config.latencyRounds} alternating rounds of ${report.config.latencyRoundSeconds} s, p99 added = median of the per-round differences` : `${report.config.latencyRoundSeconds} s`}):`
      : 'Fixed-rate latency: skipped (no rate).');
    L.push('');
    L.push('| system | target req/s | achieved req/s | p50 ms | p99 ms | p99 added vs http-proxy ms | server CPU µs/req | statuses | notes |');
    L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |');
    for (const r of report.latency) {
      if (!r.ok) {
        L.push(`| ${r.system} | ${fmt(report.latencyRate)} | ${r.skipped ? 'skipped' : 'FAILED'} | – | – | – | – | – | ${esc(short(r.error))} |`);
        continue;
      }
      const notes = [r.warning, errStr(r.errors), r.skipped ? `${r.skipped} sends skipped (backlog)` : null, r.otherLoadCores >= 0.3 ? `other load ${fmt(r.otherLoadCores, 2)} cores` : null].filter(Boolean).join('; ');
      L.push(`| ${r.system} | ${fmt(r.targetRate)} | ${fmt(r.reqPerSec)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${r.p99AddedMs == null ? '–' : (r.p99AddedMs >= 0 ? '+' : '') + r.p99AddedMs.toFixed(2)} | ${fmt(r.cpuUsPerReq, 1)} | ${statusStr(r.statuses)} | ${esc(notes)} |`);
    }
  }
  if (report.tls) L.push(...tlsMarkdown(benchHelpers(), report.tls, c));
  if (report.targets && report.targets.length) {
    L.push('');
    L.push(`Targets (issues 6 and 15), from this run${c.quick ? ' (--quick: too short to mean anything)' : ''}:`);
    L.push('');
    L.push('| target | this run | met |');
    L.push('| --- | ---: | :---: |');
    for (const t of report.targets) {
      L.push(`| ${t.target} | ${t.value == null ? '–' : `${t.value}${t.unit}`} | ${t.met == null ? '–' : t.met ? '✔' : '✘'} |`);
    }
  }
  const failed = Object.entries(report.systems).filter(([, v]) => v.status !== 'ok');
  if (failed.length) {
    L.push('');
    for (const [k, v] of failed) L.push(`- **${k} failed**: ${esc(v.error || '')}`);
  }
  L.push('');
  const roundsNote = c.rounds > 1
    ? `Load rows: median of ${c.rounds} alternating rounds (each round runs every system once, in reverse order on odd rounds); × http-proxy is the median of per-round ratios (the system's req/s ÷ http-proxy's req/s in the same round); statuses and socket errors are summed over the rounds; every round's row and ratio is in latest.json (\`rounds\`, \`ratioByRound\`). `
    : '';
  L.push(`Notes: ${roundsNote}Each system is started fresh for each run after a Redis FLUSHALL. CPU is utime+stime of the system's process tree over the measured window ÷ completed requests (for \`direct\`: nginx). Redis cmds/req is the INFO commandstats calls delta ÷ requests; it includes the commands run inside Lua scripts (an EVALSHA and each INCR/PTTL… it runs count), and "(n scripts)" is how many of those were script invocations; the per-command breakdown is in latest.json. "other load" is CPU used during the window by processes outside the benchmark (machine busy time from /proc/stat minus the system, Redis, upstream, load generator and harness), shown when ≥ 0.3 cores: such rows were measured on a busy machine. The load generator, nginx, Redis and the system share ${m.cpuCount} cores, so absolute numbers are low and noisy; compare ratios within one run.`);
  return L.join('\n') + '\n';
}

function errStr(e) {
  if (!e) return null;
  if (typeof e === 'number') return e > 0 ? `${e} socket errors` : null;
  const parts = Object.entries(e).filter(([k, v]) => v > 0 && k !== 'status').map(([k, v]) => `${k} ${v}`);
  return parts.length ? `socket errors: ${parts.join(', ')}` : null;
}

function redisCmds(r) {
  const base = fmt(r.redisCmdsPerReq, 2);
  return r.redisScriptCallsPerReq >= 0.01 ? `${base} (${fmt(r.redisScriptCallsPerReq, 2)} scripts)` : base;
}

function short(s) { s = String(s || ''); return s.length > 160 ? `${s.slice(0, 157)}…` : s; }
function esc(s) { return String(s || '').replace(/\|/g, '\\|').replace(/\n/g, ' '); }

/** What scripts/bench/tls-scenario.js uses of this harness. */
function benchHelpers() {
  return {
    ROOT, BENCH_DIR, TOLLGATE_ENV_NAMES, freePorts, startChild, systemCommand, stopChild, waitHttp, sleep, tail, runProcess, wrkScript,
    treeTicks, ticksDeltaUs, treeRssKb, round, median, fmt, esc, short, errStr, statusStr, sumCounts, sumErrors, log, which,
  };
}

// ---------------------------------------------------------------- main

async function main() {
  const started = Date.now();
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${e.message} (see --help)\n`);
    process.exit(2);
  }
  if (opts.render) {
    // Rewrites latest.md (and the targets in latest.json) from latest.json: no load is run.
    const file = path.join(opts.out, 'latest.json');
    const report = JSON.parse(fs.readFileSync(file, 'utf8'));
    report.targets = targets(report);
    fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
    fs.writeFileSync(path.join(opts.out, 'latest.md'), markdown(report));
    process.stdout.write(markdown(report));
    return null;
  }
  if (opts.pin) pinHarness();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-'));
  const ctx = { opts, tmp, failed: {}, loadgen: null, wrk: null };
  runningCtx = ctx;
  ctx.cleanupTmp = () => { if (!opts.keepTmp) fs.rmSync(tmp, { recursive: true, force: true }); };

  ctx.wrk = which('wrk');
  ctx.loadgen = opts.loadgen || (ctx.wrk ? 'wrk' : 'autocannon');
  if (ctx.loadgen === 'wrk' && !ctx.wrk) throw new Error('--loadgen wrk: wrk is not installed');

  const cpus = os.cpus();
  const machine = {
    cpuModel: cpus[0] ? cpus[0].model.trim() : 'unknown', cpuCount: cpus.length,
    node: process.version, os: `${os.type()} ${os.release()} ${os.arch()}`,
    totalMemMB: Math.round(os.totalmem() / 1048576), loadAvgStart: os.loadavg().map((x) => round(x, 2)),
    date: new Date().toISOString(),
  };

  ctx.cfg = writeConfigs(tmp);
  log(`temp dir ${tmp}; load generator ${ctx.loadgen}; ${opts.rounds} round${opts.rounds > 1 ? 's' : ''} of ${opts.warmup}s warm-up + ${opts.duration}s per run`);
  ctx.upstream = await startUpstream(tmp, opts);
  log(`upstream: ${ctx.upstream.kind} on :${ctx.upstream.port}`);
  ctx.redis = await startRedis(tmp);
  log(`redis ${ctx.redis.version} on :${ctx.redis.port}`);

  const systems = {};
  for (const s of opts.systems) systems[s] = { status: 'ok' };
  if (opts.systems.includes('tollgate') || opts.scenarios.includes('tls')) {
    const b = await ensureTollgateBuilt(opts);
    if (!b.ok) {
      ctx.failed.tollgate = b.error;
      log(`tollgate: ${b.error}`);
    }
  }

  const results = [];
  const loadScenarios = LOAD_SCENARIOS.filter((s) => opts.scenarios.includes(s));
  for (const scenario of loadScenarios) {
    const perSystem = Object.fromEntries(opts.systems.map((s) => [s, []]));
    for (let i = 0; i < opts.rounds; i++) {
      for (const system of roundOrder(opts.systems, i)) {
        log(`${scenario} · ${system}${opts.rounds > 1 ? ` (round ${i + 1}/${opts.rounds})` : ''}…`);
        const row = await runOne(ctx, system, scenario);
        row.round = i + 1;
        perSystem[system].push(row);
        if (row.ok) log(`  ${fmt(row.reqPerSec)} req/s, p99 ${fmt(row.p99Ms, 2)} ms, ${fmt(row.cpuUsPerReq, 1)} µs/req, ${statusStr(row.statuses)}${row.warning ? ` (${row.warning})` : ''}`);
      }
    }
    for (const system of opts.systems) {
      const agg = aggregateLoad(system, scenario, perSystem[system], perSystem[BASELINE]);
      results.push(agg);
      if (agg.ok && system in opts.variants) {
        const ratios = perSystem[system].map((r, i) => (r.ok && perSystem.tollgate?.[i]?.ok ? r.reqPerSec / perSystem.tollgate[i].reqPerSec : null)).filter((x) => x != null).sort((a, b) => a - b);
        agg.ratioToTollgate = ratios.length ? ratios[Math.floor((ratios.length - 1) / 2)] : null;
        log(`${scenario} · ${system}: × tollgate ${agg.ratioToTollgate == null ? '–' : agg.ratioToTollgate.toFixed(3)} (rounds: ${ratios.map((x) => x.toFixed(3)).join(' ')})`);
      }
      if (opts.rounds > 1 && agg.ok) log(`${scenario} · ${system}: median ${fmt(agg.reqPerSec)} req/s, × http-proxy ${agg.ratioToHttpProxy == null ? '–' : agg.ratioToHttpProxy.toFixed(2)} (rounds: ${(agg.ratioByRound || []).map((x) => (x == null ? '–' : x.toFixed(2))).join(' ')})`);
    }
  }

  // fixed-rate latency run
  const latency = [];
  let latencyRateSource = null;
  if (opts.scenarios.includes('latency')) {
    const base = results.find((r) => r.scenario === 'allowed-1key' && r.system === BASELINE && r.ok);
    if (opts.latencyRate) {
      ctx.latencyRate = opts.latencyRate;
      latencyRateSource = '--latency-rate';
    } else if (base) {
      ctx.latencyRate = Math.max(1, Math.round(base.reqPerSec * opts.latencyFactor));
      latencyRateSource = `${Math.round(opts.latencyFactor * 100)}% of bare http-proxy's allowed-1key max${base.roundsOk > 1 ? ` (median of ${base.roundsOk} rounds)` : ''}`;
    }
    const lsys = LATENCY_SYSTEMS.filter((s) => opts.systems.includes(s));
    const rounds = opts.latencyRounds;
    const roundS = opts.latencyDuration;
    const perSystem = Object.fromEntries(lsys.map((s) => [s, []]));
    if (ctx.latencyRate) {
      for (let i = 0; i < rounds; i++) {
        for (const system of lsys) {
          log(`latency @ ${ctx.latencyRate} req/s · ${system}${rounds > 1 ? ` (round ${i + 1}/${rounds})` : ''}…`);
          const row = await runOne(ctx, system, 'latency', roundS);
          row.round = i + 1;
          perSystem[system].push(row);
          if (row.ok) log(`  ${fmt(row.reqPerSec)} req/s, p50 ${fmt(row.p50Ms, 2)} ms, p99 ${fmt(row.p99Ms, 2)} ms, ${statusStr(row.statuses)}${row.warning ? ` (${row.warning})` : ''}`);
        }
      }
    }
    for (const system of lsys) {
      if (!ctx.latencyRate) {
        latency.push({ system, scenario: 'latency', ok: false, skipped: true, error: 'skipped: no rate (bare http-proxy allowed-1key did not run or failed; use --latency-rate)' });
        continue;
      }
      latency.push(aggregateLatency(system, perSystem[system], perSystem[BASELINE] || []));
    }
  }

  for (const s of opts.systems) {
    // judged on the single runs, so a round that failed makes the system 'partial'
    const runs = results.concat(latency).filter((r) => r.system === s && !(r.skipped && !r.ok))
      .flatMap((r) => r.rounds || [r]);
    const errors = [...new Set(runs.filter((r) => !r.ok).map((r) => `${r.scenario}: ${r.error}`))];
    if (ctx.failed[s]) systems[s] = { status: 'failed', error: ctx.failed[s] };
    else if (runs.length && runs.every((r) => !r.ok)) systems[s] = { status: 'failed', error: runs[0].error };
    else if (errors.length) systems[s] = { status: 'partial', error: errors.join('; ') };
  }

  let tls = null;
  if (opts.scenarios.includes('tls')) {
    tls = ctx.failed.tollgate ? { error: ctx.failed.tollgate } : await runTlsScenario(benchHelpers(), ctx);
  }

  machine.loadAvgEnd = os.loadavg().map((x) => round(x, 2));
  const report = {
    machine,
    config: { tollgateEnv: opts.tollgateEnv, pinned: opts.pin, path: opts.path, quick: opts.quick, rounds: opts.rounds, duration: opts.duration, warmup: opts.warmup, connections: opts.connections, loadgen: ctx.loadgen === 'wrk' ? `wrk (${opts.threads} thread${opts.threads > 1 ? 's' : ''})` : 'autocannon', latencyFactor: opts.latencyFactor, latencyRounds: opts.latencyRounds, latencyRoundSeconds: opts.latencyDuration, clkTck: CLK_TCK },
    upstream: ctx.upstream.kind,
    redisVersion: ctx.redis.version,
    systems,
    scenarios: loadScenarios,
    results,
    latencyRate: ctx.latencyRate || null,
    latencyRateSource,
    latency,
    tls,
    totalSeconds: round((Date.now() - started) / 1000, 1),
  };
  report.targets = targets(report);
  const md = markdown(report);
  fs.mkdirSync(opts.out, { recursive: true });
  fs.writeFileSync(path.join(opts.out, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(path.join(opts.out, 'latest.md'), md);
  process.stdout.write(md);
  log(`wrote ${path.relative(process.cwd(), path.join(opts.out, 'latest.json'))} and latest.md in ${report.totalSeconds} s`);
  return ctx;
}

// ---------------------------------------------------------------- lifecycle

let runningCtx = null;

async function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  const list = [...children];
  await Promise.all(list.map((c) => stopChild(c, 2000)));
  killAllSync();
  if (runningCtx && runningCtx.redis) runningCtx.redis.client.disconnect();
  if (runningCtx && runningCtx.cleanupTmp) runningCtx.cleanupTmp();
  process.exit(code);
}

process.on('exit', killAllSync);
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(sig, () => {
    log(`${sig}: stopping all child processes`);
    shutdown(code);
  });
}
process.on('unhandledRejection', (e) => {
  log(`harness error: ${e && e.stack ? e.stack : e}`);
  shutdown(1);
});
process.on('uncaughtException', (e) => {
  log(`harness error: ${e && e.stack ? e.stack : e}`);
  shutdown(1);
});

(async () => {
  try {
    await main();
    await shutdown(0);
  } catch (e) {
    log(`harness error: ${e && e.stack ? e.stack : e}`);
    await shutdown(1);
  }
})();
