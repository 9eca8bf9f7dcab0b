'use strict';
// Open-loop fixed-rate load generator for the `latency` scenario.
//
// Why not autocannon's overallRate: autocannon gives each connection a per-second quota
// and sends it closed-loop at the start of every second, so "60% load" is really 100%
// load for 0.6 s then idle, and the latency measured is the saturated latency. This
// sends requests evenly spaced in time (1 ms batches) over `connections` keep-alive
// sockets. A request that finds no idle socket waits in a FIFO for one, and that wait
// counts in its latency (measured from when it was issued). The latency from the
// request's scheduled time (coordinated-omission corrected, wrk2 style) is also given.
//
// Raw sockets and a minimal HTTP/1.1 response parser (Content-Length, chunked,
// close-delimited) keep the client at a few µs per request, so it takes little CPU away
// from the system under test on a 2-core machine (Node's http client costs ~60 µs/req).
//
// usage: node paced-load.js '<json config>'
//   { url, rate, duration, warmup, connections, headers, keys? }
// stdout: "MEASURE_START" / "MEASURE_END" around the measured window, then "RESULT <json>".
const net = require('net');
const { performance } = require('perf_hooks');

const cfg = JSON.parse(process.argv[2]);
const url = new URL(cfg.url);
const host = url.hostname;
const port = Number(url.port || 80);
const now = () => performance.now();

function buildRequests() {
  const base = { Host: `${host}:${port}`, ...(cfg.headers || {}) };
  const keys = Array.isArray(cfg.keys) && cfg.keys.length ? cfg.keys : [null];
  return keys.map((k) => {
    const h = { ...base };
    if (k !== null) h['x-api-key'] = k;
    let s = `GET ${url.pathname}${url.search} HTTP/1.1\r\n`;
    for (const [name, v] of Object.entries(h)) s += `${name}: ${v}\r\n`;
    return Buffer.from(`${s}\r\n`, 'latin1');
  });
}
const REQUESTS = buildRequests();
let reqIdx = 0;

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

// per-phase state, replaced by phase()
let P = null;

class Conn {
  constructor() {
    this.pending = null; // { t0, intended }
    this.buf = EMPTY;
    this.state = 'head';
    this.remaining = 0;
    this.status = 0;
    this.closeAfter = false;
    this.connect();
  }

  connect() {
    this.alive = false;
    const s = net.connect(port, host);
    this.sock = s;
    s.setNoDelay(true);
    s.on('connect', () => {
      this.alive = true;
      this.buf = EMPTY;
      this.state = 'head';
      if (!this.pending) idle.push(this);
      drainQueue();
    });
    s.on('data', (d) => this.onData(d));
    s.on('error', () => {});
    s.on('close', () => {
      const wasAlive = this.alive;
      this.alive = false;
      const i = idle.indexOf(this);
      if (i >= 0) idle.splice(i, 1);
      if (this.pending) {
        if (this.state === 'eof') this.complete(); // close-delimited body
        else { P.errors++; this.pending = null; P.inflight--; P.maybeDone(); }
      }
      if (!stopped) setTimeout(() => this.connect(), wasAlive ? 0 : 50);
    });
  }

  send(item) {
    this.pending = item;
    this.sock.write(REQUESTS[reqIdx++ % REQUESTS.length]);
  }

  onData(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.state === 'head') {
        const i = this.buf.indexOf(CRLFCRLF);
        if (i < 0) return;
        const head = this.buf.toString('latin1', 0, i);
        this.buf = this.buf.subarray(i + 4);
        this.status = parseInt(head.slice(9, 12), 10);
        const cl = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
        this.closeAfter = /\r\nconnection:[ \t]*close/i.test(head);
        if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) this.state = 'chunk';
        else if (cl) { this.state = 'body'; this.remaining = Number(cl[1]); }
        else if (this.status === 204 || this.status === 304 || this.status < 200) { this.state = 'body'; this.remaining = 0; }
        else { this.state = 'eof'; return; }
      }
      if (this.state === 'body') {
        if (this.buf.length < this.remaining) { this.remaining -= this.buf.length; this.buf = EMPTY; return; }
        this.buf = this.buf.subarray(this.remaining);
        this.complete();
        continue;
      }
      if (this.state === 'chunk') {
        const i = this.buf.indexOf(CRLF);
        if (i < 0) return;
        const size = parseInt(this.buf.toString('latin1', 0, i), 16);
        if (size === 0) {
          const end = this.buf.indexOf(CRLFCRLF, i);
          if (end < 0) return;
          this.buf = this.buf.subarray(end + 4);
          this.complete();
          continue;
        }
        if (this.buf.length < i + 2 + size + 2) return;
        this.buf = this.buf.subarray(i + 2 + size + 2);
        continue;
      }
      return; // 'eof': read until close
    }
  }

  complete() {
    const t1 = now();
    const item = this.pending;
    this.pending = null;
    this.state = 'head';
    if (item) {
      P.record(this.status, t1 - item.t0, t1 - item.intended);
      P.inflight--;
    }
    if (this.closeAfter) { this.sock.destroy(); return; }
    const next = queue.length ? queue.shift() : null;
    if (next) this.send(next);
    else idle.push(this);
    P.maybeDone();
  }
}

const idle = [];
let queue = [];
let stopped = false;

function drainQueue() {
  while (queue.length && idle.length) {
    const c = idle.pop();
    if (!c.alive) continue;
    c.send(queue.shift());
  }
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function phase(seconds, record) {
  return new Promise((resolve) => {
    const rate = cfg.rate;
    const total = Math.max(1, Math.floor(rate * seconds));
    const maxBacklog = Math.max(1000, rate * 2);
    const lat = new Float64Array(total);
    const corr = new Float64Array(total);
    const start = now();
    let n = 0;
    let next = 0;
    let finishedSending = false;
    let resolved = false;
    P = {
      inflight: 0, errors: 0, skipped: 0, sent: 0, statuses: {},
      record(status, l, c) {
        P.statuses[status] = (P.statuses[status] || 0) + 1;
        if (record && n < total) { lat[n] = l; corr[n] = c; n++; }
      },
      maybeDone() {
        if (!finishedSending || P.inflight > 0 || resolved) return;
        resolved = true;
        clearTimeout(guard);
        resolve({ lat: lat.subarray(0, n), corr: corr.subarray(0, n), sent: P.sent, skipped: P.skipped, errors: P.errors, statuses: P.statuses, wallS: (now() - start) / 1000 });
      },
    };
    // never wait more than 10 s for stragglers after the last send
    let guard = null;
    const tick = () => {
      const t = now();
      const due = Math.min(total, Math.floor(((t - start) * rate) / 1000) + 1);
      while (next < due) {
        const intended = start + (next * 1000) / rate;
        next++;
        if (P.inflight >= maxBacklog) { P.skipped++; continue; }
        P.inflight++;
        P.sent++;
        const item = { t0: t, intended };
        const c = idle.pop();
        if (c && c.alive) c.send(item);
        else queue.push(item);
      }
      if (next >= total) {
        finishedSending = true;
        guard = setTimeout(() => {
          P.errors += P.inflight; P.inflight = 0; queue = []; P.maybeDone();
        }, 10000);
        P.maybeDone();
        return;
      }
      setTimeout(tick, 1);
    };
    tick();
  });
}

async function main() {
  const conns = [];
  for (let i = 0; i < cfg.connections; i++) conns.push(new Conn());
  // wait for the pool to connect (at most 5 s)
  const t0 = now();
  while (idle.length < cfg.connections && now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
  if (cfg.warmup > 0) await phase(cfg.warmup, false);
  process.stdout.write('MEASURE_START\n');
  const cpu0 = process.cpuUsage();
  const r = await phase(cfg.duration, true);
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write('MEASURE_END\n');
  stopped = true;
  for (const c of conns) c.sock.destroy();
  const lat = Float64Array.from(r.lat).sort();
  const corr = Float64Array.from(r.corr).sort();
  const completed = Object.values(r.statuses).reduce((a, b) => a + b, 0);
  const out = {
    tool: 'paced-load (open loop)',
    requests: completed,
    durationS: r.wallS,
    reqPerSec: completed / r.wallS,
    targetRate: cfg.rate,
    sent: r.sent,
    skipped: r.skipped,
    errors: r.errors,
    statuses: r.statuses,
    loadgenCpuUs: cpu.user + cpu.system,
    p50Ms: percentile(lat, 50),
    p90Ms: percentile(lat, 90),
    p99Ms: percentile(lat, 99),
    maxMs: lat.length ? lat[lat.length - 1] : null,
    corrected: { p50Ms: percentile(corr, 50), p99Ms: percentile(corr, 99), maxMs: corr.length ? corr[corr.length - 1] : null },
  };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
