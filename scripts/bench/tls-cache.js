'use strict';
/*
 * Does the same TLS work cost more in a process that sweeps the CPU caches between requests?
 * The hello server (answers from memory) pinned to CPU 1 with EVICT_KB = 0, 512 and 1536
 * (1536 KB is more than one core's L2 on the machine this was written on), each over plain
 * HTTP and HTTPS/1.1 under wrk pinned to CPU 0; ROUNDS alternations (default 4). Prints the
 * median server CPU per request of each and what TLS adds. docs/tls.md, "Where the TLS time
 * goes". Needs 2 CPUs, taskset, wrk, openssl.
 *
 * With `alloc`, the knob is ALLOC_KB = 0, 10 and 20 instead: garbage allocated per request
 * (hello itself allocates ≈ 8.5 KB per request; 20 more is about tollgate's ≈ 29 KB), which
 * says how much of TLS's cost in tollgate a smaller allocation rate would take away.
 *
 *   node scripts/bench/tls-cache.js [ROUNDS] [evict|alloc]
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const { freePorts, sleep } = require('../overload/processes');
const { selfSignedPair } = require('./tls-scenario');

const KNOBS = { evict: { env: 'EVICT_KB', sizes: [0, 512, 1536] }, alloc: { env: 'ALLOC_KB', sizes: [0, 10, 20] } };
const SECONDS = 5;

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
/** utime + stime of `pid` in milliseconds. */
const cpuMs = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
};
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function cpuPerRequest(tmp, knob, kb, mode) {
  const [port] = await freePorts(1);
  const tls = mode === 'https' ? { TLS_CERT_FILE: path.join(tmp, 'tls.crt'), TLS_KEY_FILE: path.join(tmp, 'tls.key') } : {};
  const server = spawn('taskset', ['-c', '1', process.execPath, path.join(__dirname, 'hello-server.js')],
    { env: { ...process.env, PORT: String(port), [knob.env]: String(kb), ...tls }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => {
      server.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); });
      server.on('exit', (code) => reject(new Error(`hello-server exited ${code}`)));
    });
    const url = `${mode}://127.0.0.1:${port}/`;
    execFileSync('taskset', ['-c', '0', 'wrk', '-t1', '-c50', '-d2s', url]); // warm-up
    const before = cpuMs(server.pid);
    const out = execFileSync('taskset', ['-c', '0', 'wrk', '-t1', '-c50', `-d${SECONDS}s`, url]).toString();
    const requests = Number(/(\d+) requests in/.exec(out)[1]);
    return ((cpuMs(server.pid) - before) * 1000) / requests;
  } finally {
    server.kill();
    await sleep(200);
  }
}

async function main() {
  const rounds = Number(process.argv[2] || 4);
  const knob = KNOBS[process.argv[3] || 'evict'];
  if (!knob) throw new Error(`unknown knob ${process.argv[3]}: evict or alloc`);
  const sizes = knob.sizes;
  execFileSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-tls-cache-'));
  try {
    selfSignedPair(tmp);
    const runs = Object.fromEntries(sizes.map((kb) => [kb, { http: [], https: [] }]));
    for (let r = 0; r < rounds; r++) {
      for (const kb of sizes) {
        for (const mode of r % 2 ? ['https', 'http'] : ['http', 'https']) runs[kb][mode].push(await cpuPerRequest(tmp, knob, kb, mode));
      }
    }
    console.log(`| ${knob.env} | plain, server CPU µs/request | HTTPS/1.1 | TLS adds (median of ${rounds} rounds) | HTTPS ÷ plain |`);
    console.log('| ---: | ---: | ---: | ---: | ---: |');
    for (const kb of sizes) {
      const { http, https } = runs[kb];
      const adds = https.map((v, i) => v - http[i]);
      const ratios = https.map((v, i) => http[i] / v);
      console.log(`| ${kb} | ${median(http).toFixed(1)} | ${median(https).toFixed(1)} | ${median(adds).toFixed(1)} | ${median(ratios).toFixed(2)} |`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exitCode = 1;
});
