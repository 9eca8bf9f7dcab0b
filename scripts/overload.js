#!/usr/bin/env node
'use strict';
// tollgate's overload experiment (issue 12, SPEC §8): does the gateway keep the paying tiers'
// within-contract requests served when the upstream loses most of its capacity?
//
// Starts redis-server, a fake upstream with a fixed number of slots whose service time
// follows the scenario's timeline (scripts/overload/upstream.js) and, for each mode, a fresh
// gateway (dist/main.js) in front of it; sends open-model load per tier for the scenario's
// length, polls GET /admin/health every 250 ms, and writes the figures per mode, group and
// phase to bench-results/overload/<scenario>[-quick|-smoke].{json,md,svg}. docs/overload.md
// explains the setup, the definitions and the results.
//
// Everything runs on loopback ports, is bounded in time, and every child process is killed
// when the script ends, also on SIGINT/SIGTERM and on errors.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { execFileSync } = require('node:child_process');
const { parseFlags, positiveInteger, optionsOrExit, UsageError } = require('./cli');
const P = require('./overload/processes');
const plan = require('./overload/plan');
const { startLoad } = require('./overload/load');
const { analyzeRun, targetsOf } = require('./overload/analyze');
const { renderMarkdown, renderSvg, summaryTable, toJson } = require('./overload/report');

const USAGE = `Usage: npm run overload -- [--scenario fault|healthy|flap[,…]] [--modes none,manual,auto] [--quick | --smoke]
  --scenario S        fault (default): healthy, ~60 % capacity loss, healthy; healthy: no fault;
                      flap: the fault comes and goes; a comma list or "all" runs several
  --modes M           comma list of none, manual, auto, shadow (default none,manual,auto)
  --quick             short preset: every default mode of the fault scenario in under 3 minutes
  --smoke             shortest preset, for the test suite (seconds per mode; figures not meaningful)
  --operator-delay N  manual mode: the operator switches N s after the fault starts and ends (default 10)
  --dwell N           a transition undone within N s counts as a flap (default 60, the gateway's
                      HEALTH_DWELL_S default; quick 10, smoke 2)
  --slots N           upstream slots (default 10)
  --healthy-ms N      upstream service time when healthy (default 50)
  --fault-ms N        upstream service time during the fault (default 125)
  --gateway-env K=V   extra gateway setting, repeatable
  --algorithm A       the tiers' algorithm: sliding-window (default, as shipped) or gcra
  --out DIR           where the results go (default bench-results/overload)
  --gateway FILE      the gateway's entry point (default dist/main.js; e.g. another worktree's build)
  --build             run npm run build first (also done when dist/main.js is missing)
  --keep-tmp          keep the temp dir (tiers, keys, logs)
  --render            no load: rewrite the .md and .svg of --scenario/preset in --out from their .json
Durations: full fault scenario 30 s before + 60 s fault + 30 s after (+ up to 180 s more until
NORMAL) per mode; healthy 300 s; flap 30 + 110 + 30 s. --quick and --smoke shorten all of them.`;

const POLL_MS = 250;
const TIMEOUT_MS = 1000;
const START_TIMEOUT_MS = 20_000;
const AFTER_NORMAL_S = 10;

const log = (text) => process.stderr.write(`[overload ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

function parseOptions(argv) {
  const v = parseFlags(argv, {
    scenario: { type: 'string', default: 'fault' },
    modes: { type: 'string', default: plan.DEFAULT_MODES.join(',') },
    quick: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    'operator-delay': { type: 'string' },
    dwell: { type: 'string' },
    slots: { type: 'string', default: '10' },
    'healthy-ms': { type: 'string', default: '50' },
    'fault-ms': { type: 'string', default: '125' },
    'gateway-env': { type: 'string', multiple: true, default: [] },
    algorithm: { type: 'string', default: plan.TIERS.algorithm },
    out: { type: 'string', default: path.join(P.ROOT, 'bench-results', 'overload') },
    gateway: { type: 'string' },
    build: { type: 'boolean', default: false },
    'keep-tmp': { type: 'boolean', default: false },
    render: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) return { help: true };
  if (v.quick && v.smoke) throw new UsageError('--quick and --smoke exclude each other');
  const preset = v.smoke ? 'smoke' : v.quick ? 'quick' : 'full';
  const scenarios = v.scenario === 'all' ? plan.SCENARIOS : v.scenario.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of scenarios) if (!plan.SCENARIOS.includes(s)) throw new UsageError(`--scenario: unknown ${s} (allowed: ${plan.SCENARIOS.join(', ')}, all)`);
  const modes = v.modes.split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of modes) if (!plan.MODES[m]) throw new UsageError(`--modes: unknown ${m} (allowed: ${Object.keys(plan.MODES).join(', ')})`);
  if (modes.length === 0) throw new UsageError('--modes: at least one mode');
  const gatewayEnv = {};
  for (const kv of v['gateway-env']) {
    const m = /^([A-Z0-9_]+)=(.*)$/s.exec(kv);
    if (!m) throw new UsageError(`--gateway-env: expected NAME=value, got ${JSON.stringify(kv)}`);
    gatewayEnv[m[1]] = m[2];
  }
  if (!['sliding-window', 'gcra'].includes(v.algorithm)) throw new UsageError(`--algorithm: sliding-window or gcra, got ${JSON.stringify(v.algorithm)}`);
  const p = { ...plan.PRESETS[preset] };
  if (v['operator-delay'] !== undefined) p.operatorDelay = positiveInteger(v['operator-delay'], '--operator-delay');
  if (v.dwell !== undefined) p.dwell = positiveInteger(v.dwell, '--dwell');
  return {
    preset, p, scenarios, modes, gatewayEnv, tiers: { ...plan.TIERS, algorithm: v.algorithm },
    slots: positiveInteger(v.slots, '--slots'),
    healthyMs: positiveInteger(v['healthy-ms'], '--healthy-ms'),
    faultMs: positiveInteger(v['fault-ms'], '--fault-ms'),
    out: path.resolve(v.out), build: v.build, keepTmp: v['keep-tmp'], render: v.render,
    gateway: v.gateway === undefined ? null : path.resolve(v.gateway),
  };
}

// ---------------------------------------------------------------- infrastructure

async function startRedis(tmp) {
  const bin = P.which('redis-server');
  if (!bin) throw new Error('redis-server not found on the PATH');
  const [port] = await P.freePorts(1);
  const dir = path.join(tmp, 'redis');
  fs.mkdirSync(dir, { recursive: true });
  const c = P.startChild('redis', bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning']);
  const Redis = require('ioredis');
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100, enableOfflineQueue: true });
  const ok = await P.waitUntil(async () => {
    try {
      if (client.status === 'wait') await client.connect();
      return (await client.ping()) === 'PONG';
    } catch { return false; }
  }, c, 10_000);
  if (!ok) {
    client.disconnect();
    throw new Error(`redis-server did not start: ${P.tail(c.output)}`);
  }
  return { port, proc: c, flush: () => client.flushall(), close: () => client.quit().catch(() => client.disconnect()) };
}

async function startUpstream(o, logFile) {
  const c = P.forkChild('upstream', path.join(__dirname, 'overload', 'upstream.js'), {
    env: { PATH: process.env.PATH, PORT: '0', SLOTS: String(o.slots), LATENCY_MS: String(o.healthyMs) },
    logFile,
  });
  const samples = [];
  let t0 = null;
  const ready = new Promise((resolve) => {
    c.child.on('message', (msg) => {
      if (msg.type === 'ready') resolve(msg.port);
      if (msg.type === 'stats' && t0 !== null) samples.push({ t: (performance.now() - t0) / 1000, ...msg });
    });
    c.exitedPromise.then(() => resolve(null));
  });
  const port = await Promise.race([ready, P.sleep(10_000).then(() => null)]);
  if (!port) throw new Error(`upstream did not start: ${P.tail(c.output)}`);
  return {
    port, proc: c, samples,
    setT0: (t) => { t0 = t; },
    setLatency: (ms) => { if (c.child.connected) c.child.send({ type: 'latency', ms }); },
  };
}

function gatewayEnv(o, ports, files, modeEnv) {
  return {
    PATH: process.env.PATH,
    ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
    HOST: '127.0.0.1',
    PORT: String(ports.proxy),
    ADMIN_HOST: '127.0.0.1',
    ADMIN_PORT: String(ports.admin),
    UPSTREAM_URL: `http://127.0.0.1:${ports.upstream}`,
    REDIS_URL: `redis://127.0.0.1:${ports.redis}`,
    TIERS_FILE: files.tiers,
    KEYS_FILE: files.keys,
    LOG_LEVEL: 'info',
    SHUTDOWN_TIMEOUT_MS: '3000',
    ...modeEnv,
    ...o.gatewayEnv,
  };
}

async function startGateway(main, env, logFile) {
  const c = P.startChild('gateway', process.execPath, [main], { env, logFile });
  const ready = await P.waitUntil(async () => (await P.httpJson(Number(env.ADMIN_PORT), 'GET', '/readyz')).status === 200, c, START_TIMEOUT_MS);
  return { proc: c, ready };
}

// ---------------------------------------------------------------- one mode

async function runMode(ctx, scenario, modeName) {
  const { o, tmp, redis, files, warnings } = ctx;
  const mode = plan.MODES[modeName];
  const tl = plan.timeline(scenario, o.p);
  const tag = `${scenario}-${modeName}`;
  await redis.flush();
  const upstream = await startUpstream(o, path.join(tmp, `${tag}-upstream.log`));
  const [proxy, admin] = await P.freePorts(2);
  const ports = { proxy, admin, upstream: upstream.port, redis: redis.port };
  let gw = await startGateway(ctx.gatewayMain, gatewayEnv(o, ports, files, mode.env), path.join(tmp, `${tag}-gateway.log`));
  if (!gw.ready && /unknown field "(critical|priority)"/.test(gw.proc.output) && !files.legacy) {
    // A gateway from before SPEC §8's tier fields: run on the same tiers without them, and say so.
    await P.stopChild(gw.proc);
    fs.writeFileSync(files.tiers, JSON.stringify(plan.legacyTiers(o.tiers), null, 2));
    files.legacy = true;
    warnings.push('this gateway rejects the tier fields `critical` and `priority` (SPEC §8): the run used the tiers without them');
    log(`warning: ${warnings[warnings.length - 1]}`);
    gw = await startGateway(ctx.gatewayMain, gatewayEnv(o, ports, files, mode.env), path.join(tmp, `${tag}-gateway.log`));
  }
  try {
    if (!gw.ready) throw new Error(`gateway (${modeName}) did not become ready: ${P.tail(gw.proc.output)}`);
    const first = await P.httpJson(admin, 'GET', '/admin/health');
    const gatewayMode = first.body && first.body.mode ? first.body.mode : first.status === 200 ? 'manual (no mode field)' : null;

    const loadavgBefore = os.loadavg().map((x) => +x.toFixed(2));
    const maxSeconds = tl.duration + tl.recoveryWait + 1;
    log(`${tag}: load for ${tl.duration} s${tl.recoveryWait ? ` (+ up to ${tl.recoveryWait} s until NORMAL)` : ''}`);
    const load = startLoad({ url: `http://127.0.0.1:${proxy}`, groups: plan.GROUPS, timeoutMs: TIMEOUT_MS, seconds: maxSeconds });
    upstream.setT0(load.t0);
    const timers = [];
    const polls = [];
    const operator = [];
    let poller = null;
    let seconds;
    try {
      const at = (t, fn) => timers.push(setTimeout(fn, Math.max(0, load.t0 + t * 1000 - performance.now())));
      for (const [a, b] of tl.faults) {
        at(a, () => upstream.setLatency(o.faultMs));
        at(b, () => upstream.setLatency(o.healthyMs));
      }
      if (mode.operator && tl.faults.length) {
        const put = async (status) => {
          const t = load.elapsed() / 1000;
          const r = await P.httpJson(admin, 'PUT', '/admin/health', { status });
          operator.push({ t, status, code: r.status });
        };
        const on = tl.faults[0][0] + o.p.operatorDelay;
        const off = tl.faults[tl.faults.length - 1][1] + o.p.operatorDelay;
        if (on < tl.duration) at(on, () => put('DEGRADED'));
        // NORMAL without a TTL is a pin that equals manual mode's default; the DELETE ends it
        // where the gateway has overrides (SPEC §8) and is a harmless 404 where it has not.
        if (off < tl.duration) at(off, () => put('NORMAL').then(() => P.httpJson(admin, 'DELETE', '/admin/health/override')));
      }
      let polling = false;
      poller = setInterval(async () => {
        if (polling) return;
        polling = true;
        const t = load.elapsed() / 1000;
        const r = await P.httpJson(admin, 'GET', '/admin/health', undefined, TIMEOUT_MS);
        const b = r.status === 200 && r.body ? r.body : null;
        polls.push({ t, status: b ? b.status : null, automatic: b && b.automatic ? b.automatic.status : null, override: b ? Boolean(b.override) : null });
        polling = false;
      }, POLL_MS);

      // The planned length, then (full preset) until the state has been NORMAL for a while.
      await P.sleep(tl.duration * 1000 - load.elapsed());
      if (tl.recoveryWait > 0 && tl.faults.length) {
        const limit = (tl.duration + tl.recoveryWait) * 1000;
        while (load.elapsed() < limit && load.elapsed() / 1000 - normalSince(polls) < AFTER_NORMAL_S) await P.sleep(POLL_MS);
      }
      seconds = Math.min(maxSeconds, Math.round(load.elapsed() / 1000));
    } finally {
      clearInterval(poller);
      for (const t of timers) clearTimeout(t);
      await load.stop();
    }
    const metrics = await P.httpJson(admin, 'GET', '/metrics', undefined, 5000);
    const result = analyzeRun({
      groups: plan.GROUPS, buckets: load.buckets, latencies: load.latencies, polls, faults: tl.faults, phases: tl.phases,
      dwell: o.p.dwell, seconds, upstream: upstream.samples, operator,
    });
    return {
      mode: modeName, what: mode.what, gatewayEnv: mode.env, gatewayMode, seconds, operator, result, targets: targetsOf(scenario, result),
      // the machine's 1/5/15-minute load averages: the figures mean less on a busy machine
      loadavg: { before: loadavgBefore, after: os.loadavg().map((x) => +x.toFixed(2)) },
      otherStatuses: load.otherStatuses,
      upstream: upstream.samples.map(({ t, busy, queued, queueMax, served, dropped, latencyMs, lagMaxMs }) => ({ t: +t.toFixed(2), busy, queued, queueMax, served, dropped, latencyMs, lagMaxMs })),
      polls: polls.map((p) => ({ ...p, t: +p.t.toFixed(2) })),
      gatewayMetrics: metricLines(metrics.text || ''),
    };
  } finally {
    await P.stopChild(gw.proc);
    await P.stopChild(upstream.proc);
    const audit = readAudit(path.join(tmp, `${tag}-gateway.log`));
    if (audit.length) ctx.audit[tag] = audit;
  }
}

/** Since when the polls have shown NORMAL, in force and automatic (Infinity: not NORMAL now). */
function normalSince(polls) {
  const good = (p) => p.status === 'NORMAL' && (!p.automatic || p.automatic === 'NORMAL');
  let i = polls.length - 1;
  if (i < 0 || !good(polls[i])) return Infinity;
  while (i > 0 && good(polls[i - 1])) i--;
  return i === 0 ? 0 : polls[i].t;
}

/** The §8 metrics worth keeping with the figures (the gateway's own count of what happened). */
function metricLines(text) {
  return text.split('\n').filter((l) => /^tollgate_(health_transitions_total|health_state|health_automatic_state|concurrency_limit|upstream_inflight)\b/.test(l)
    || (/^tollgate_requests_total\b/.test(l) && /outcome="(overloaded|limited|upstream_error)"/.test(l)));
}

function readAudit(file) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"health.changed"')).slice(0, 200).map((l) => {
      try { return JSON.parse(l); } catch { return l; }
    });
  } catch { return []; }
}

// ---------------------------------------------------------------- main

function baseName(scenario, preset) {
  return `${scenario}${preset === 'full' ? '' : `-${preset}`}`;
}

function writeReport(o, base, report) {
  fs.writeFileSync(path.join(o.out, `${base}.json`), `${toJson(report)}\n`);
  fs.writeFileSync(path.join(o.out, `${base}.md`), renderMarkdown(report));
  fs.writeFileSync(path.join(o.out, `${base}.svg`), renderSvg(report));
}

/** --render: the markdown and SVG again from the JSON (after a change to their layout). */
function render(o) {
  for (const scenario of o.scenarios) {
    const base = baseName(scenario, o.preset);
    const report = JSON.parse(fs.readFileSync(path.join(o.out, `${base}.json`), 'utf8'));
    fs.writeFileSync(path.join(o.out, `${base}.md`), renderMarkdown(report));
    fs.writeFileSync(path.join(o.out, `${base}.svg`), renderSvg(report));
    log(`rendered ${path.relative(process.cwd(), path.join(o.out, base))}.{md,svg}`);
  }
  return 0;
}

function ensureBuilt(force) {
  if (!force && fs.existsSync(path.join(P.ROOT, 'dist', 'main.js'))) return;
  log('npm run build');
  execFileSync('npm', ['run', 'build'], { cwd: P.ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
}

function machine() {
  const cpus = os.cpus();
  return { node: process.version, cpuCount: cpus.length, cpuModel: cpus[0] ? cpus[0].model.trim() : 'unknown', platform: `${os.platform()} ${os.release()}` };
}

async function main() {
  const o = optionsOrExit('overload', USAGE, () => parseOptions(process.argv.slice(2)));
  if (!o) return 0;
  if (o.render) return render(o);
  P.installExitHandlers(log);
  if (o.gateway === null) ensureBuilt(o.build);
  const gatewayMain = o.gateway || path.join(P.ROOT, 'dist', 'main.js');
  if (!fs.existsSync(gatewayMain)) throw new Error(`${gatewayMain} does not exist`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-overload-'));
  // also when a signal or an error ends the run (the children are gone by then)
  if (!o.keepTmp) process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  fs.mkdirSync(o.out, { recursive: true });
  const files = { tiers: path.join(tmp, 'tiers.json'), keys: path.join(tmp, 'keys.json'), legacy: false };
  fs.writeFileSync(files.tiers, JSON.stringify(o.tiers, null, 2));
  fs.writeFileSync(files.keys, JSON.stringify(plan.keysFile(plan.GROUPS)));
  const redis = await startRedis(tmp);
  const ctx = { o, tmp, redis, files, gatewayMain, warnings: [], audit: {} };
  let failed = false;
  try {
    for (const scenario of o.scenarios) {
      const started = Date.now();
      const runs = [];
      for (const mode of o.modes) {
        try {
          runs.push(await runMode(ctx, scenario, mode));
        } catch (err) {
          failed = true;
          log(`${scenario}-${mode} failed: ${err.message}`);
          runs.push({ mode, error: err.message });
        }
      }
      const base = baseName(scenario, o.preset);
      const tl = plan.timeline(scenario, o.p);
      const report = {
        scenario, preset: o.preset, date: new Date().toISOString(), wallSeconds: Math.round((Date.now() - started) / 1000),
        command: ['npm run overload', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '), gateway: path.relative(P.ROOT, gatewayMain),
        machine: machine(), timeoutMs: TIMEOUT_MS, pollMs: POLL_MS, dwell: o.p.dwell, operatorDelay: o.p.operatorDelay,
        upstream: { slots: o.slots, healthyMs: o.healthyMs, faultMs: o.faultMs },
        timeline: { faults: tl.faults, phases: tl.phases, plannedSeconds: tl.duration, recoveryWait: tl.recoveryWait },
        tiers: files.legacy ? plan.legacyTiers(o.tiers) : o.tiers, groups: plan.GROUPS,
        warnings: ctx.warnings.slice(), svgFile: `${base}.svg`, runs,
        audit: Object.fromEntries(Object.entries(ctx.audit).filter(([k]) => k.startsWith(`${scenario}-`))),
      };
      writeReport(o, base, report);
      process.stdout.write(`\n${scenario} (${o.preset}, ${report.wallSeconds} s):\n${summaryTable(report)}\n`);
      log(`wrote ${path.relative(process.cwd(), path.join(o.out, base))}.{json,md,svg}`);
    }
  } finally {
    await redis.close();
    await P.stopChild(redis.proc);
    if (o.keepTmp) log(`kept ${tmp}`);
  }
  return failed ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  log(err && err.stack ? err.stack : String(err));
  P.killAllSync();
  process.exit(1);
});
