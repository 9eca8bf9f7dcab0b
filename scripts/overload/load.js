'use strict';
// Open-model load for the overload experiment: every group sends its requests at a fixed rate
// whatever the answers (a closed loop would slow down with the server and hide the overload:
// see Schroeder et al., "Open Versus Closed: A Cautionary Tale", NSDI 2006). Each request
// gives up after `timeoutMs` (1 s): a user who waited longer has left.
//
// Arrivals are evenly spaced per group and the group's keys take turns, so a key's rate is
// the group's rate divided by its keys, exactly (no random bursts above a key's contract).
// Outcomes are counted per group and per second of sending; nothing per request is kept
// except the latencies of the 2xx answers, for the percentiles.

const { performance } = require('node:perf_hooks');
const { Pool } = require('undici');
const { keysOf } = require('./plan');

const OUTCOMES = ['ok', 'limited', 'overloaded', 'timeout', 'upstreamError', 'otherStatus', 'error'];

function emptyBucket() {
  const b = { sent: 0 };
  for (const o of OUTCOMES) b[o] = 0;
  return b;
}

function outcomeOf(status, errorCode) {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 429) return 'limited';
  if (status === 503 && errorCode === 'overloaded') return 'overloaded';
  if (status === 502 || status === 504) return 'upstreamError';
  return 'otherStatus';
}

/**
 * Starts sending at once. `seconds` bounds the bucket arrays (a request sent later is not
 * counted, and none is sent after stop()). Returns { t0, stop(), buckets, latencies, otherStatuses }.
 */
function startLoad({ url, groups, timeoutMs, seconds, apiKeyHeader = 'x-api-key' }) {
  const pool = new Pool(url, { connections: 4096, pipelining: 1, keepAliveTimeout: 4000 });
  const t0 = performance.now();
  const buckets = {};
  const latencies = {};
  const otherStatuses = {};
  const state = groups.map((g, i) => {
    buckets[g.name] = Array.from({ length: seconds }, emptyBucket);
    latencies[g.name] = Array.from({ length: seconds }, () => []);
    const interval = 1000 / g.rate;
    // groups start out of step with each other, so their arrivals do not coincide
    return { g, keys: keysOf(g), next: 0, interval, due: (interval * i) / groups.length };
  });
  let inflight = 0;
  let stopped = false;
  let settle = null;

  function record(name, second, outcome, latencyMs, status) {
    const b = buckets[name][second];
    b[outcome]++;
    if (outcome === 'ok') latencies[name][second].push(Math.round(latencyMs * 10) / 10);
    if (outcome === 'otherStatus' || outcome === 'upstreamError') otherStatuses[status] = (otherStatuses[status] || 0) + 1;
  }

  async function send(s, key, sentAt) {
    const second = Math.floor(sentAt / 1000);
    if (second >= seconds) return;
    buckets[s.g.name][second].sent++;
    inflight++;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    let outcome = 'error';
    let status = 0;
    try {
      const res = await pool.request({ path: '/work', method: 'GET', headers: { [apiKeyHeader]: key }, signal: ac.signal });
      status = res.statusCode;
      let code = null;
      if (status >= 200 && status < 300) {
        await res.body.dump({ signal: ac.signal });
      } else {
        const text = await res.body.text();
        try { code = JSON.parse(text).error; } catch { /* not JSON */ }
      }
      outcome = outcomeOf(status, code);
    } catch (err) {
      outcome = ac.signal.aborted ? 'timeout' : 'error';
    } finally {
      clearTimeout(timer);
    }
    const latency = performance.now() - t0 - sentAt;
    // an answer that arrives exactly at the deadline is no better than a timeout
    if (outcome === 'ok' && latency > timeoutMs) outcome = 'timeout';
    record(s.g.name, second, outcome, latency, status);
    inflight--;
    if (stopped && inflight === 0 && settle) settle();
  }

  // A 1 ms timer loop: sends every arrival that is due, catching up after a late tick (the
  // arrival times stay on the schedule; the send time recorded is the scheduled one).
  const timer = setInterval(() => {
    const now = performance.now() - t0;
    for (const s of state) {
      while (s.due <= now) {
        const key = s.keys[s.next];
        s.next = (s.next + 1) % s.keys.length;
        send(s, key, s.due);
        s.due += s.interval;
      }
    }
  }, 1);

  async function stop() {
    stopped = true;
    clearInterval(timer);
    if (inflight > 0) {
      await Promise.race([
        new Promise((resolve) => { settle = resolve; }),
        new Promise((resolve) => setTimeout(resolve, timeoutMs + 2000)),
      ]);
    }
    await pool.destroy().catch(() => undefined);
  }

  return { t0, stop, buckets, latencies, otherStatuses, elapsed: () => performance.now() - t0 };
}

module.exports = { startLoad, OUTCOMES };
