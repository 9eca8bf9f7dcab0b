'use strict';
/*
 * Instructions per request that TLS adds, counted by valgrind (callgrind), for tollgate, the
 * minimal undici forwarder and the hello server: each run plain and over HTTPS/1.1, 2,000
 * warm-up requests, then the counters zeroed and 4,000 requests counted (h2load --h1, 10
 * connections). Only the main thread's instructions are taken (everything under Node's
 * event loop): V8's compiler and GC threads vary from run to run and do no TLS work.
 * Unlike wall-clock CPU, the counts repeat closely on a busy machine; they say how much work
 * TLS is, not how long that work takes. docs/tls.md, "Where the TLS time goes". Needs
 * valgrind, h2load, redis-server, openssl; `npm run build` first.
 *
 * --cache-sim: callgrind also simulates the caches, a 32 KB L1 for code and one for data
 * and a 1 MB 16-way last level (one core's L2 where this was written), with 50 connections
 * as in the bench, and the table gains the main thread's last-level misses per request
 * (code reads, data reads, data writes). The system `hello-alloc20` is the hello server
 * allocating 20 KB more garbage per request (ALLOC_KB), about tollgate's rate. The counted
 * requests come on new connections, so both columns include 50 handshakes ÷ 4,000 requests,
 * the same for every system.
 *
 *   node scripts/bench/tls-instructions.js [tollgate,forward-undici,hello,hello-alloc20] [--cache-sim]
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const { freePorts, sleep } = require('../overload/processes');
const { selfSignedPair } = require('./tls-scenario');

const ROOT = path.join(__dirname, '..', '..');
const WARM = 2000;
const COUNTED = 4000;
const SERVERS = {
  tollgate: path.join(ROOT, 'dist', 'main.js'),
  'forward-undici': path.join(__dirname, 'forward-undici-server.js'),
  hello: path.join(__dirname, 'hello-server.js'),
  'hello-alloc20': path.join(__dirname, 'hello-server.js'),
};
/** Settings a system gets beyond the common ones. */
const EXTRA_ENV = { 'hello-alloc20': { ALLOC_KB: '20' } };
/** The simulated caches of --cache-sim (size, associativity, line size). */
const CACHES = ['--I1=32768,8,64', '--D1=32768,8,64', '--LL=1048576,16,64'];

/**
 * vgdb (behind callgrind_control) finds a valgrind process by a FIFO named after USER and
 * HOST, read on each side from its own environment: both get the same USER and no HOST
 * (tollgate reads HOST as its listen address, 0.0.0.0 by default).
 */
const VG_ENV = { USER: 'tollgate-bench', LOGNAME: 'tollgate-bench' };

function setup(tmp) {
  selfSignedPair(tmp);
  fs.writeFileSync(path.join(tmp, 'tiers.json'), JSON.stringify({ windowSeconds: 60, algorithm: 'sliding-window', tiers: { bench: { limit: 1e8, burst: 1e8 } } }));
  fs.writeFileSync(path.join(tmp, 'keys.json'), JSON.stringify({ keys: [{ key: 'bench_key_0000001', tier: 'bench', name: 'k1' }] }));
}

/**
 * The main thread's inclusive counts (everything under node::SpinEventLoopInternal) in a
 * callgrind dump, by event name (Ir; with the cache simulation also ILmr, DLmr, DLmw, …).
 */
function mainThreadCounts(file) {
  const out = execFileSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], { maxBuffer: 64 << 20 }).toString();
  const events = /^Events shown:\s+(.*)$/m.exec(out)[1].trim().split(/\s+/);
  const line = out.split('\n').find((l) => l.includes('SpinEventLoopInternal'));
  if (!line) throw new Error(`no event-loop entry in ${file}`);
  // Each count is followed by its share in parentheses ("1,234 (5.6%)"); "." means zero.
  const values = line.trim().split(/\s+/).filter((t) => /^([\d,]+|\.)$/.test(t)).map((t) => (t === '.' ? 0 : Number(t.replace(/,/g, ''))));
  return Object.fromEntries(events.map((e, i) => [e, values[i]]));
}

async function countOne(tmp, upstreamPort, redisPort, system, mode, cacheSim) {
  const [port, adminPort] = await freePorts(2);
  const out = path.join(tmp, `${system}-${mode}`);
  const env = {
    PATH: process.env.PATH, ...VG_ENV, PORT: String(port), ADMIN_PORT: String(adminPort), ADMIN_HOST: '127.0.0.1',
    UPSTREAM_URL: `http://127.0.0.1:${upstreamPort}`, REDIS_URL: `redis://127.0.0.1:${redisPort}`, LOG_LEVEL: 'warn', ACCESS_LOG: 'false',
    TIERS_FILE: path.join(tmp, 'tiers.json'), KEYS_FILE: path.join(tmp, 'keys.json'),
    ...(mode === 'https' ? { TLS_CERT_FILE: path.join(tmp, 'tls.crt'), TLS_KEY_FILE: path.join(tmp, 'tls.key') } : {}),
    ...EXTRA_ENV[system],
  };
  const vgdb = `--vgdb-prefix=${path.join(tmp, 'vgdb')}`;
  const child = spawn('valgrind', ['--tool=callgrind', ...(cacheSim ? ['--cache-sim=yes', ...CACHES] : ['--cache-sim=no']), vgdb, `--callgrind-out-file=${out}.%p`, process.execPath, SERVERS[system]],
    { env, stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  const url = `${mode}://127.0.0.1:${port}/`;
  const vgEnv = { ...process.env, ...VG_ENV };
  delete vgEnv.HOST;
  try {
    let up = false;
    for (let i = 0; i < 240 && !up && child.exitCode === null; i++) {
      try { execFileSync('curl', ['-sk', '-o', '/dev/null', '-m', '5', url]); up = true; } catch { await sleep(1000); }
    }
    if (!up) throw new Error(`${system} did not start: ${stderr}`);
    const load = (n) => execFileSync('h2load', ['--h1', '-n', String(n), '-c', cacheSim ? '50' : '10', '-H', 'x-api-key: bench_key_0000001', url]).toString();
    load(WARM);
    execFileSync('callgrind_control', [vgdb, '-z', String(child.pid)], { env: vgEnv, stdio: 'ignore' });
    const text = load(COUNTED);
    const ok = Number((/status codes: (\d+) 2xx/.exec(text) || [])[1]);
    if (ok !== COUNTED) throw new Error(`${system} ${mode}: ${ok} of ${COUNTED} answered 2xx`);
    execFileSync('callgrind_control', [vgdb, '-d', String(child.pid)], { env: vgEnv, stdio: 'ignore' });
    const dump = `${out}.${child.pid}.1`;
    for (let i = 0; i < 120 && !fs.existsSync(dump); i++) await sleep(500);
    await sleep(2000); // the dump is written in pieces
    const counts = mainThreadCounts(dump);
    return Object.fromEntries(Object.entries(counts).map(([e, v]) => [e, v / COUNTED]));
  } finally {
    child.kill('SIGKILL');
  }
}

async function main() {
  const args = process.argv.slice(2);
  const cacheSim = args.includes('--cache-sim');
  const systems = (args.find((a) => !a.startsWith('--')) || 'tollgate,forward-undici,hello').split(',');
  for (const s of systems) if (!SERVERS[s]) throw new Error(`unknown system ${s}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-tls-ir-'));
  setup(tmp);
  const [redisPort, upstreamPort] = await freePorts(2);
  const redis = spawn('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const upstream = spawn(process.execPath, [path.join(__dirname, 'upstream-server.js')], { env: { ...process.env, PORT: String(upstreamPort) }, stdio: 'ignore' });
  const k = (v) => `${(v / 1000).toFixed(1)}k`;
  // Last-level misses: code reads, data reads, data writes.
  const misses = (c) => `${Math.round(c.ILmr)} + ${Math.round(c.DLmr)} + ${Math.round(c.DLmw)}`;
  const added = (plain, tls) => Math.round(tls.ILmr + tls.DLmr + tls.DLmw - plain.ILmr - plain.DLmr - plain.DLmw);
  try {
    await sleep(500);
    if (cacheSim) {
      console.log('| system | plain, instructions/request | HTTPS/1.1 | TLS adds | plain, last-level misses/request (code + data read + data write) | HTTPS/1.1 | TLS adds |');
      console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    } else {
      console.log('| system | plain, instructions/request | HTTPS/1.1 | TLS adds |');
      console.log('| --- | ---: | ---: | ---: |');
    }
    for (const system of systems) {
      const plain = await countOne(tmp, upstreamPort, redisPort, system, 'http', cacheSim);
      const tls = await countOne(tmp, upstreamPort, redisPort, system, 'https', cacheSim);
      const row = `| ${system} | ${k(plain.Ir)} | ${k(tls.Ir)} | ${k(tls.Ir - plain.Ir)} |`;
      console.log(cacheSim ? `${row} ${misses(plain)} | ${misses(tls)} | ${added(plain, tls)} |` : row);
    }
  } finally {
    redis.kill();
    upstream.kill();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exitCode = 1;
});
