'use strict';
/*
 * The `tls` scenario of scripts/bench.js (issue 15, opt-in: --scenarios tls): tollgate and
 * the minimal undici forwarder (forward-undici-server.js, listening as tollgate does with
 * TLS: http2 secure server with allowHTTP1) over the five protocols below, and a Node server
 * answering from memory (hello-server.js, listening alike) over the first two only: what
 * Node's TLS costs a server with next to no work of its own, the floor of the ratio
 *   http       plain HTTP, kept-alive connections (wrk): the baseline of the ratio
 *   https      HTTPS/1.1, kept-alive connections (wrk; wrk offers no ALPN, so HTTP/1.1)
 *   h2         HTTP/2, many streams per connection (h2load -c C/10 -m 10)
 *   h2wide     HTTP/2, all C streams on one connection (h2load -c 1 -m C): the same
 *              concurrency, multiplexed as far as it goes
 *   handshake  HTTPS/1.1 with Connection: close: a new TLS connection (full handshake,
 *              ECDSA P-256 certificate) per request; its req/s is the handshake rate
 * each system started fresh per run, rounds alternating the order like the other scenarios,
 * ratios taken within a round. Then one certificate-swap run: tollgate under HTTPS/1.1
 * keep-alive, handshake and h2 load at once while its certificate pair is swapped (the
 * Kubernetes way, `..data` symlink) every 250 ms; every failed request and socket error
 * is counted.
 */
const fs = require('fs');
const http = require('http');
const path = require('path');
const { execFileSync } = require('child_process');

const MODES = ['http', 'https', 'h2', 'h2wide', 'handshake'];
const SYSTEMS = ['hello', 'forward-undici', 'tollgate'];
const SERVER_FILE = { hello: 'hello-server.js', 'forward-undici': 'forward-undici-server.js' };
/** The protocols each system runs: the hello server only the ones of the HTTPS ÷ plain ratio. */
const modesOf = (system) => (system === 'hello' ? MODES.slice(0, 2) : MODES);
const H2_STREAMS = 10;

/** The whole body of a GET (the admin port's /metrics), '' on any failure. */
function getText(port, p) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(''));
  });
}

function openssl(args) {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed ECDSA P-256 pair for 127.0.0.1 written into `dir` (tls.crt, tls.key). */
function selfSignedPair(dir) {
  fs.mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(dir, 'tls.key'),
    '-out', path.join(dir, 'tls.crt'), '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  return { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') };
}

/** Two self-signed pairs (a and b), and a Secret-style directory serving a. */
function makePairs(tmp) {
  const pairs = {};
  for (const name of ['a', 'b']) pairs[name] = selfSignedPair(path.join(tmp, `tls-${name}`));
  const secret = path.join(tmp, 'tls-secret');
  fs.mkdirSync(secret);
  let version = 0;
  const publish = (pair) => {
    version += 1;
    const data = `..v${version}`;
    fs.mkdirSync(path.join(secret, data));
    fs.copyFileSync(pair.cert, path.join(secret, data, 'tls.crt'));
    fs.copyFileSync(pair.key, path.join(secret, data, 'tls.key'));
    fs.symlinkSync(data, path.join(secret, '..data_tmp'));
    fs.renameSync(path.join(secret, '..data_tmp'), path.join(secret, '..data'));
  };
  publish(pairs.a);
  fs.symlinkSync('..data/tls.crt', path.join(secret, 'tls.crt'));
  fs.symlinkSync('..data/tls.key', path.join(secret, 'tls.key'));
  return { ...pairs, secret: { cert: path.join(secret, 'tls.crt'), key: path.join(secret, 'tls.key'), publish } };
}

async function startTls(h, ctx, system, tls, envExtra = {}) {
  const { upstream, redis, cfg, opts } = ctx;
  const [port, adminPort] = await h.freePorts(2);
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  const tlsEnv = tls ? { TLS_CERT_FILE: tls.cert, TLS_KEY_FILE: tls.key } : {};
  let c;
  let ready;
  if (system === 'tollgate') {
    const inherited = { ...process.env };
    for (const k of h.TOLLGATE_ENV_NAMES.concat('TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_MIN_VERSION', 'HTTP2')) delete inherited[k];
    const env = {
      ...inherited, UPSTREAM_URL: upstreamUrl, PORT: String(port), HOST: '127.0.0.1', ADMIN_PORT: String(adminPort), ADMIN_HOST: '127.0.0.1',
      REDIS_URL: redis.url, LOG_LEVEL: 'warn', TIERS_FILE: cfg.tiersFile, KEYS_FILE: cfg.keysFile, ...opts.tollgateEnv, ...tlsEnv, ...envExtra,
    };
    c = h.startChild('tollgate', ...h.systemCommand(process.execPath, [path.join(h.ROOT, 'dist', 'main.js')]), { env, stdoutFile: path.join(ctx.tmp, 'tollgate-tls.stdout.log') });
    ready = () => h.waitHttp(adminPort, '/readyz', c, 30000, undefined, 200);
  } else {
    const env = { ...process.env, PORT: String(port), HOST: '127.0.0.1', UPSTREAM_URL: upstreamUrl, TLS_CERT_FILE: '', TLS_KEY_FILE: '', ...tlsEnv };
    c = h.startChild(system, ...h.systemCommand(process.execPath, [path.join(h.BENCH_DIR, SERVER_FILE[system])]), { env, readyLine: /\bready\b/ });
    ready = async () => (await Promise.race([c.ready, h.sleep(20000).then(() => false)]));
  }
  if (!(await ready())) {
    await h.stopChild(c, 1000);
    throw new Error(`${system} did not start: ${c.exited ? `exited (code ${c.exitCode ?? c.signal})` : 'not ready'}: ${h.tail(c.output, 600)}`);
  }
  return { pid: c.pid, port, adminPort, proc: c };
}

function wrkArgs(h, ctx, url, seconds, connections, extraHeaders) {
  return ['-t', String(ctx.opts.threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', '5s', '-s', h.wrkScript(ctx.tmp, null),
    '-H', `x-api-key: ${ctx.cfg.oneKey}`, ...extraHeaders.flatMap((x) => ['-H', x]), url];
}

async function wrk(h, ctx, url, seconds, connections, extraHeaders = []) {
  let result = null;
  const c = await h.runProcess('wrk', ctx.wrk, wrkArgs(h, ctx, url, seconds, connections, extraHeaders), (seconds + 20) * 1000, (line) => {
    if (line.startsWith('BENCHJSON ')) result = JSON.parse(line.slice(10));
  });
  if (c.exitCode !== 0 || !result) throw new Error(`wrk failed (exit ${c.exitCode ?? c.signal}): ${h.tail(c.output, 400)}`);
  const requests = Object.values(result.statuses).reduce((a, b) => a + b, 0);
  return {
    tool: `wrk -c${connections}${extraHeaders.length ? ' (Connection: close)' : ''}`, requests, reqPerSec: requests / (result.durationUs / 1e6),
    p50Ms: result.p50Us / 1000, p99Ms: result.p99Us / 1000, statuses: result.statuses, errors: result.errors,
  };
}

/** Parses h2load's summary: req/s, the request counts, status classes, mean time per request. */
function parseH2load(text) {
  const num = (re) => { const m = re.exec(text); return m ? Number(m[1]) : null; };
  const m = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  const req = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(text);
  const ms = (v) => (v == null ? null : v.endsWith('us') ? Number(v.slice(0, -2)) / 1000 : v.endsWith('ms') ? Number(v.slice(0, -2)) : Number(v.slice(0, -1)) * 1000);
  return {
    reqPerSec: num(/finished in [\d.]+m?s, ([\d.]+) req\/s/),
    done: m ? Number(m[3]) : null, succeeded: m ? Number(m[4]) : null, failed: m ? Number(m[5]) : null, errored: m ? Number(m[6]) : null, timeout: m ? Number(m[7]) : null,
    statuses: codes ? Object.fromEntries([['2xx', Number(codes[1])], ['3xx', Number(codes[2])], ['4xx', Number(codes[3])], ['5xx', Number(codes[4])]].filter(([, v]) => v > 0)) : {},
    meanMs: req ? ms(req[3]) : null,
  };
}

async function h2load(h, ctx, url, seconds, clients, streams) {
  const args = ['-c', String(clients), '-m', String(streams), '-t', '1', '-D', String(seconds), '-H', `x-api-key: ${ctx.cfg.oneKey}`, url];
  let out = '';
  const c = await h.runProcess('h2load', ctx.h2load, args, (seconds + 30) * 1000, (line) => { out += `${line}\n`; });
  const r = parseH2load(out);
  if (c.exitCode !== 0 || r.reqPerSec == null) throw new Error(`h2load failed (exit ${c.exitCode ?? c.signal}): ${h.tail(out + c.output, 400)}`);
  return {
    tool: `h2load -c${clients} -m${streams}`, requests: r.done, reqPerSec: r.reqPerSec, p50Ms: null, p99Ms: null, meanMs: r.meanMs,
    statuses: r.statuses, errors: { failed: r.failed, errored: r.errored, timeout: r.timeout },
  };
}

function load(h, ctx, mode, port, seconds) {
  const c = ctx.opts.connections;
  switch (mode) {
    case 'http': return wrk(h, ctx, `http://127.0.0.1:${port}/`, seconds, c);
    case 'https': return wrk(h, ctx, `https://127.0.0.1:${port}/`, seconds, c);
    case 'h2': return h2load(h, ctx, `https://127.0.0.1:${port}/`, seconds, Math.max(1, Math.round(c / H2_STREAMS)), H2_STREAMS);
    case 'h2wide': return h2load(h, ctx, `https://127.0.0.1:${port}/`, seconds, 1, c);
    default: return wrk(h, ctx, `https://127.0.0.1:${port}/`, seconds, c, ['Connection: close']);
  }
}

async function runTlsOne(h, ctx, pairs, system, mode) {
  const row = { system, mode, ok: false };
  await ctx.redis.client.flushall();
  let sys = null;
  try {
    sys = await startTls(h, ctx, system, mode === 'http' ? null : pairs.a);
    if (ctx.opts.warmup > 0) await load(h, ctx, mode, sys.port, ctx.opts.warmup);
    const before = h.treeTicks(sys.pid);
    const r = await load(h, ctx, mode, sys.port, ctx.opts.duration);
    const cpuUs = h.ticksDeltaUs(before, h.treeTicks(sys.pid));
    const ok2xx = (r.statuses['200'] || 0) + (r.statuses['2xx'] || 0);
    Object.assign(row, {
      ok: r.requests > 0, tool: r.tool, requests: r.requests, reqPerSec: h.round(r.reqPerSec, 1), p50Ms: h.round(r.p50Ms, 3), p99Ms: h.round(r.p99Ms, 3),
      meanMs: h.round(r.meanMs, 3), cpuUsPerReq: r.requests ? h.round(cpuUs / r.requests, 1) : null, statuses: r.statuses, errors: r.errors,
      rssMB: h.round(h.treeRssKb(sys.pid) / 1024, 1), okShare: r.requests ? h.round(ok2xx / r.requests, 4) : 0,
    });
    if (row.okShare < 0.99) row.warning = `only ${(row.okShare * 100).toFixed(1)}% of responses were 2xx`;
  } catch (e) {
    row.error = e.message;
    h.log(`tls ${system}/${mode}: ${e.message}`);
  } finally {
    if (sys) await h.stopChild(sys.proc, 3000);
  }
  return row;
}

/** tollgate under three kinds of load while its pair is swapped every 250 ms. */
async function swapUnderLoad(h, ctx, pairs, seconds) {
  const out = { ok: false, seconds };
  let sys = null;
  let swapping = true;
  try {
    sys = await startTls(h, ctx, 'tollgate', pairs.secret, { LOG_LEVEL: 'info', ACCESS_LOG: 'false' });
    const swaps = (async () => {
      let n = 0;
      while (swapping) {
        await h.sleep(250);
        if (!swapping) break;
        pairs.secret.publish(n % 2 === 0 ? pairs.b : pairs.a);
        n += 1;
      }
      return n;
    })();
    const [keep, fresh, multi] = await Promise.all([
      wrk(h, ctx, `https://127.0.0.1:${sys.port}/`, seconds, 30),
      wrk(h, ctx, `https://127.0.0.1:${sys.port}/`, seconds, 10, ['Connection: close']),
      h2load(h, ctx, `https://127.0.0.1:${sys.port}/`, seconds, 2, H2_STREAMS),
    ]);
    swapping = false;
    out.swaps = await swaps;
    await h.sleep(500);
    const metrics = await getText(sys.adminPort, '/metrics');
    const count = (result) => Number((new RegExp(`^tollgate_config_reloads_total\\{file="tls",result="${result}"\\} (\\d+)`, 'm').exec(metrics) || [])[1] ?? NaN);
    out.reloadsOk = count('ok');
    out.reloadsRejected = count('rejected');
    const socketErrors = (e) => Object.entries(e || {}).filter(([k]) => k !== 'status').reduce((a, [, v]) => a + (v || 0), 0);
    const non2xx = (st) => Object.entries(st).filter(([k]) => k !== '200' && k !== '2xx').reduce((a, [, v]) => a + v, 0);
    out.runs = [['HTTPS/1.1 keep-alive', keep], ['HTTPS/1.1 new connection per request', fresh], ['h2', multi]].map(([what, r]) => ({
      what, tool: r.tool, requests: r.requests, reqPerSec: h.round(r.reqPerSec, 1), failed: non2xx(r.statuses), socketErrors: socketErrors(r.errors),
    }));
    out.requests = out.runs.reduce((a, r) => a + r.requests, 0);
    out.failed = out.runs.reduce((a, r) => a + r.failed, 0);
    out.socketErrors = out.runs.reduce((a, r) => a + r.socketErrors, 0);
    out.ok = true;
  } catch (e) {
    out.error = e.message;
    h.log(`tls swap: ${e.message}`);
  } finally {
    swapping = false;
    if (sys) await h.stopChild(sys.proc, 3000);
  }
  return out;
}

function ratios(h, rowsOf, num, den) {
  const a = rowsOf(num[0], num[1]);
  const b = rowsOf(den[0], den[1]);
  const byRound = a.map((r, i) => (r && r.ok && b[i] && b[i].ok && b[i].reqPerSec > 0 ? r.reqPerSec / b[i].reqPerSec : null));
  return { byRound: byRound.map((x) => h.round(x, 3)), median: h.round(h.median(byRound), 3) };
}

/** Server CPU per request that TLS adds (HTTPS/1.1 minus plain HTTP, within each round). */
function cpuDelta(h, rowsOf, system) {
  const tls = rowsOf(system, 'https');
  const plain = rowsOf(system, 'http');
  const byRound = tls.map((r, i) => (r && r.ok && plain[i] && plain[i].ok ? r.cpuUsPerReq - plain[i].cpuUsPerReq : null));
  return { byRound: byRound.map((x) => h.round(x, 1)), median: h.round(h.median(byRound), 1) };
}

async function runTlsScenario(h, ctx) {
  const { opts } = ctx;
  ctx.h2load = h.which('h2load');
  if (!ctx.h2load) return { error: 'h2load not installed (Debian: nghttp2-client)' };
  if (!ctx.wrk) return { error: 'the tls scenario needs wrk' };
  const pairs = makePairs(ctx.tmp);
  const runs = [];
  for (let i = 0; i < opts.rounds; i++) {
    const order = i % 2 ? SYSTEMS.slice().reverse() : SYSTEMS;
    for (const system of order) {
      for (const mode of (i % 2 ? modesOf(system).slice().reverse() : modesOf(system))) {
        h.log(`tls · ${system} · ${mode}${opts.rounds > 1 ? ` (round ${i + 1}/${opts.rounds})` : ''}…`);
        const row = await runTlsOne(h, ctx, pairs, system, mode);
        row.round = i + 1;
        runs.push(row);
        if (row.ok) h.log(`  ${h.fmt(row.reqPerSec)} req/s, ${h.fmt(row.cpuUsPerReq, 1)} µs/req${row.warning ? ` (${row.warning})` : ''}`);
      }
    }
  }
  const rowsOf = (system, mode) => Array.from({ length: opts.rounds }, (_, i) => runs.find((r) => r.system === system && r.mode === mode && r.round === i + 1) || null);
  const rows = [];
  for (const system of SYSTEMS) {
    for (const mode of modesOf(system)) {
      const all = rowsOf(system, mode).filter(Boolean);
      const ok = all.filter((r) => r.ok);
      const row = { system, mode, ok: ok.length > 0, roundsOk: ok.length, rounds: all };
      if (!ok.length) { row.error = all[0] ? all[0].error : 'did not run'; rows.push(row); continue; }
      row.tool = ok[0].tool;
      for (const k of ['reqPerSec', 'p50Ms', 'p99Ms', 'meanMs', 'cpuUsPerReq', 'rssMB']) row[k] = h.round(h.median(ok.map((r) => r[k])), 3);
      row.statuses = h.sumCounts(ok.map((r) => r.statuses));
      row.errors = h.sumErrors(ok);
      const warn = ok.find((r) => r.warning);
      if (warn) row.warning = warn.warning;
      rows.push(row);
    }
  }
  const result = {
    rows,
    ratios: {
      tollgateHttpsOverHttp: ratios(h, rowsOf, ['tollgate', 'https'], ['tollgate', 'http']),
      tollgateH2OverHttps: ratios(h, rowsOf, ['tollgate', 'h2'], ['tollgate', 'https']),
      tollgateH2WideOverHttps: ratios(h, rowsOf, ['tollgate', 'h2wide'], ['tollgate', 'https']),
      forwarderHttpsOverHttp: ratios(h, rowsOf, ['forward-undici', 'https'], ['forward-undici', 'http']),
      forwarderH2OverHttps: ratios(h, rowsOf, ['forward-undici', 'h2'], ['forward-undici', 'https']),
      forwarderH2WideOverHttps: ratios(h, rowsOf, ['forward-undici', 'h2wide'], ['forward-undici', 'https']),
      helloHttpsOverHttp: ratios(h, rowsOf, ['hello', 'https'], ['hello', 'http']),
    },
    tlsCostUs: Object.fromEntries(SYSTEMS.map((s) => [s, cpuDelta(h, rowsOf, s)])),
  };
  for (const mode of MODES) result.ratios[`tollgateOverForwarder_${mode}`] = ratios(h, rowsOf, ['tollgate', mode], ['forward-undici', mode]);
  h.log('tls · certificate swap under load…');
  result.swap = await swapUnderLoad(h, ctx, pairs, Math.max(2, opts.duration * 2));
  if (result.swap.ok) h.log(`  ${result.swap.swaps} swaps, ${result.swap.requests} requests, ${result.swap.failed} failed, ${result.swap.socketErrors} socket errors`);
  return result;
}

const MODE_LABEL = { http: 'HTTP/1.1 (plain)', https: 'HTTPS/1.1', h2: 'HTTP/2', h2wide: 'HTTP/2, one connection', handshake: 'HTTPS/1.1, new connection per request' };

/** The markdown section for latest.md. */
function tlsMarkdown(h, tls, c) {
  const L = [''];
  if (tls.error) {
    L.push(`TLS scenario: not run (${tls.error}).`);
    return L;
  }
  L.push(`TLS and HTTP/2 (\`--scenarios tls\`; ECDSA P-256 certificate; ${c.rounds > 1 ? `median of ${c.rounds} alternating rounds` : '1 run'}; h2: h2load, ${H2_STREAMS} streams per connection, "one connection": every stream on one; "new connection per request" is the TLS handshake rate):`);
  L.push('');
  L.push('| system | protocol | req/s | p50 ms | p99 ms | server CPU µs/req | RSS MB | tool | statuses | notes |');
  L.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |');
  for (const r of tls.rows) {
    if (!r.ok) { L.push(`| ${r.system} | ${MODE_LABEL[r.mode]} | FAILED | – | – | – | – | – | – | ${h.esc(h.short(r.error))} |`); continue; }
    const notes = [r.warning, h.errStr(r.errors), r.meanMs != null ? `mean ${h.fmt(r.meanMs, 2)} ms` : null].filter(Boolean).join('; ');
    L.push(`| ${r.system} | ${MODE_LABEL[r.mode]} | ${h.fmt(r.reqPerSec)} | ${h.fmt(r.p50Ms, 2)} | ${h.fmt(r.p99Ms, 2)} | ${h.fmt(r.cpuUsPerReq, 1)} | ${h.fmt(r.rssMB, 0)} | ${r.tool} | ${h.statusStr(r.statuses)} | ${h.esc(notes)} |`);
  }
  const x = (r) => (r && r.median != null ? `${r.median.toFixed(2)} (rounds: ${r.byRound.map((v) => (v == null ? '–' : v.toFixed(2))).join(' ')})` : '–');
  L.push('');
  const us = (r) => (r && r.median != null ? `${r.median.toFixed(1)} (rounds: ${r.byRound.map((v) => (v == null ? '–' : v.toFixed(1))).join(' ')})` : '–');
  L.push('| ratio (same round) | tollgate | forward-undici | hello (answers from memory) |');
  L.push('| --- | ---: | ---: | ---: |');
  L.push(`| HTTPS/1.1 ÷ plain HTTP | ${x(tls.ratios.tollgateHttpsOverHttp)} | ${x(tls.ratios.forwarderHttpsOverHttp)} | ${x(tls.ratios.helloHttpsOverHttp)} |`);
  L.push(`| HTTP/2 ÷ HTTPS/1.1 | ${x(tls.ratios.tollgateH2OverHttps)} | ${x(tls.ratios.forwarderH2OverHttps)} | – |`);
  L.push(`| HTTP/2, one connection ÷ HTTPS/1.1 | ${x(tls.ratios.tollgateH2WideOverHttps)} | ${x(tls.ratios.forwarderH2WideOverHttps)} | – |`);
  L.push(`| server CPU µs per request TLS adds (HTTPS/1.1 − plain) | ${us(tls.tlsCostUs.tollgate)} | ${us(tls.tlsCostUs['forward-undici'])} | ${us(tls.tlsCostUs.hello)} |`);
  L.push('');
  L.push(`tollgate ÷ forward-undici: ${MODES.map((m) => `${MODE_LABEL[m]} ${x(tls.ratios[`tollgateOverForwarder_${m}`])}`).join('; ')}.`);
  const s = tls.swap;
  L.push('');
  if (!s || !s.ok) L.push(`Certificate swap under load: FAILED (${h.esc(s ? s.error : 'did not run')}).`);
  else {
    L.push(`Certificate swap under load (${s.seconds} s, the pair swapped every 250 ms: ${s.swaps} swaps, ${s.reloadsOk} reloads applied, ${s.reloadsRejected} rejected): ${s.requests} requests, **${s.failed} failed, ${s.socketErrors} socket errors (dropped connections)**.`);
    for (const r of s.runs) L.push(`- ${r.what} (${r.tool}): ${r.requests} requests, ${h.fmt(r.reqPerSec)} req/s, ${r.failed} failed, ${r.socketErrors} socket errors`);
  }
  return L;
}

/** The targets of issue 15 from this run. */
function tlsTargets(tls, add) {
  if (!tls || tls.error) return;
  add('tls: tollgate HTTPS/1.1 ≥ 0.9× its plain HTTP (kept-alive)', tls.ratios.tollgateHttpsOverHttp.median, (v) => v >= 0.9);
  add('tls: tollgate h2 ≥ 0.9× its HTTPS/1.1 (10 streams on each of 5 connections)', tls.ratios.tollgateH2OverHttps.median, (v) => v >= 0.9);
  add('tls: tollgate h2 ≥ 0.9× its HTTPS/1.1 (50 streams on one connection)', tls.ratios.tollgateH2WideOverHttps.median, (v) => v >= 0.9);
  const s = tls.swap;
  add('tls: certificate swap under load: failed requests + socket errors', s && s.ok ? s.failed + s.socketErrors : null, (v) => v === 0, 0);
}

module.exports = { runTlsScenario, tlsMarkdown, tlsTargets, parseH2load, selfSignedPair };
