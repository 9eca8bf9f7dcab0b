'use strict';
// What the overload experiment runs, as data: the presets, the tiers file, the load per
// tier, the modes and the fault timeline of each scenario. Pure; scripts/overload.js runs it.

/**
 * Tiers written to the experiment's TIERS_FILE. The shipped tiers' shape (free has
 * `critical: 0`, priorities free 0 / pro 1 / enterprise 2) with a 10 s window, so that the
 * contracts make sense at the experiment's per-key rates:
 *   free        limit 10 (1/s), burst 20, degraded 1 (0.1/s), critical 0 (refused with 503)
 *   pro         limit 100 (10/s), burst 150 (15/s); degraded and critical default to limit
 *   enterprise  limit 1000 (100/s), burst 1000
 */
const TIERS = {
  windowSeconds: 10,
  algorithm: 'sliding-window',
  tiers: {
    free: { limit: 10, burst: 20, degraded: 1, critical: 0, priority: 0 },
    pro: { limit: 100, burst: 150, priority: 1 },
    enterprise: { limit: 1000, burst: 1000, priority: 2 },
  },
};

/**
 * Open-model load: each group sends `rate` requests per second in all, evenly spaced, its
 * keys in turn (so each key sends rate/keys per second), whatever the answers.
 * `contract`: `within` = every key sends under its tier's `limit` (the requests that must be
 * served), `above` = the key sends more than its `limit`, `free` = the lowest priority.
 *
 *   free        200 keys × 0.5/s = 100/s   (5 per window: under free's limit in NORMAL;
 *                                            DEGRADED lets 1 per window through = 20/s)
 *   pro-within    4 keys × 4/s   =  16/s   (40 per window, limit 100)
 *   pro-above     1 key  × 20/s  =  20/s   (200 per window: NORMAL allows 15/s, DEGRADED 10/s)
 *   enterprise    2 keys × 8/s   =  16/s   (80 per window, limit 1000)
 *
 * Offered 152/s; what NORMAL lets through ≈ 147/s = 74 % of the healthy upstream (10 slots ×
 * 50 ms = 200/s) but 184 % of the faulty one (10 × 125 ms = 80/s). The within-contract
 * traffic (32/s) fits the faulty upstream 2.5 times over; DEGRADED lets ≈ 62/s through
 * (78 % of 80/s), CRITICAL ≈ 42/s.
 */
const GROUPS = [
  { name: 'free', tier: 'free', keys: 200, rate: 100, contract: 'free' },
  { name: 'pro-within', tier: 'pro', keys: 4, rate: 16, contract: 'within' },
  { name: 'pro-above', tier: 'pro', keys: 1, rate: 20, contract: 'above' },
  { name: 'enterprise', tier: 'enterprise', keys: 2, rate: 16, contract: 'within' },
];

/** Gateway settings per mode. `operator`: someone PUTs DEGRADED during the fault. */
const MODES = {
  none: { env: { HEALTH_MODE: 'manual', CONCURRENCY_LIMIT: 'off' }, operator: false, what: 'nobody switches, no in-flight guard' },
  manual: { env: { HEALTH_MODE: 'manual', CONCURRENCY_LIMIT: 'off' }, operator: true, what: 'an operator PUTs DEGRADED N s into the fault and NORMAL N s after it' },
  auto: { env: { HEALTH_MODE: 'auto', CONCURRENCY_LIMIT: 'auto' }, operator: false, what: 'HEALTH_MODE=auto CONCURRENCY_LIMIT=auto' },
  shadow: { env: { HEALTH_MODE: 'shadow', CONCURRENCY_LIMIT: 'off' }, operator: false, what: 'HEALTH_MODE=shadow: the automatic state is computed and shown, never applied' },
};
const DEFAULT_MODES = ['none', 'manual', 'auto'];
const SCENARIOS = ['fault', 'healthy', 'flap'];

/**
 * Seconds. `before`/`after`: healthy phases around the fault; `fault`: its length;
 * `recoveryWait`: how much longer than `after` the run may go on waiting for NORMAL;
 * `healthy`: the healthy scenario's length; `flap`: its on/off period and total length;
 * `dwell`: a transition undone within this many seconds is a flap (full: the gateway's default
 * quiet dwell, HEALTH_DWELL_S=60; shorter presets scale it down with the fault); `operatorDelay`: N.
 */
const PRESETS = {
  full: { before: 30, fault: 60, after: 30, recoveryWait: 180, healthy: 300, flapPeriod: 10, flapTotal: 120, dwell: 60, operatorDelay: 10 },
  quick: { before: 10, fault: 24, after: 12, recoveryWait: 0, healthy: 40, flapPeriod: 6, flapTotal: 24, dwell: 10, operatorDelay: 10 },
  smoke: { before: 3, fault: 5, after: 3, recoveryWait: 0, healthy: 6, flapPeriod: 2, flapTotal: 6, dwell: 2, operatorDelay: 2 },
};

/**
 * The scenario's latency timeline and phases (seconds from the start of the load).
 * faults: [[start, end), …]; phases: [{name, from, to}]; duration: planned length
 * (the run may go on to `duration + recoveryWait` while waiting for NORMAL).
 */
function timeline(scenario, p) {
  if (scenario === 'healthy') {
    return { faults: [], phases: [{ name: 'healthy', from: 0, to: p.healthy }], duration: p.healthy, recoveryWait: 0 };
  }
  const faults = [];
  if (scenario === 'fault') {
    faults.push([p.before, p.before + p.fault]);
  } else if (scenario === 'flap') {
    for (let t = p.before; t + p.flapPeriod <= p.before + p.flapTotal; t += 2 * p.flapPeriod) faults.push([t, t + p.flapPeriod]);
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  const faultStart = faults[0][0];
  const faultEnd = faults[faults.length - 1][1];
  return {
    faults,
    phases: [
      { name: 'before', from: 0, to: faultStart },
      { name: 'fault', from: faultStart, to: faultEnd },
      { name: 'after', from: faultEnd, to: faultEnd + p.after },
    ],
    duration: faultEnd + p.after,
    recoveryWait: p.recoveryWait,
  };
}

/** Key strings per group (8–128 of [A-Za-z0-9_-], SPEC §3). */
function keysOf(group) {
  return Array.from({ length: group.keys }, (_, i) => `overload-${group.name}-${String(i).padStart(3, '0')}`);
}

function keysFile(groups) {
  return { keys: groups.flatMap((g) => keysOf(g).map((key) => ({ key, tier: g.tier, name: `overload ${g.name}` }))) };
}

/** The tiers without §8's fields, for a gateway that does not know them yet. */
function legacyTiers(tiers) {
  const out = { ...tiers, tiers: {} };
  for (const [name, t] of Object.entries(tiers.tiers)) {
    const { critical: _c, priority: _p, ...rest } = t;
    out.tiers[name] = rest;
  }
  return out;
}

module.exports = { TIERS, GROUPS, MODES, DEFAULT_MODES, SCENARIOS, PRESETS, timeline, keysOf, keysFile, legacyTiers };
