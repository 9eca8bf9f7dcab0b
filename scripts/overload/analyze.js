'use strict';
// The overload experiment's figures, from what one run recorded: per-second outcome buckets
// per load group and the health state polled every 250 ms. Pure (no I/O, no clock).
//
// Definitions (also in docs/overload.md):
// - goodput: share of the requests *sent* in a phase that were answered 2xx within the
//   client's 1 s timeout; within-contract goodput counts the groups whose every key sends
//   under its tier's `limit` (pro-within and enterprise).
// - time to detect: first fault start → first poll showing a state other than NORMAL.
// - time to recover: last fault end → the first poll from which the state stays NORMAL to
//   the end of the run (null when it is not NORMAL at the end).
// - transition: a change of the state in force between two polls; a flap is a transition
//   that the next transition undoes (back to the state it left) within `dwell` seconds,
//   counted over the gateway's own transitions (an operator's PUT is not a flap).
// - shed precision: share of the 503 `overloaded` refusals that hit free or above-contract
//   requests.

const STATE_RANK = { NORMAL: 0, DEGRADED: 1, CRITICAL: 2 };

function sumBuckets(list) {
  const out = {};
  for (const b of list) for (const [k, v] of Object.entries(b)) out[k] = (out[k] || 0) + v;
  return out;
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

function ratio(num, den) {
  return den > 0 ? num / den : null;
}

function slice(arr, from, to) {
  return arr.slice(Math.max(0, Math.floor(from)), Math.max(0, Math.floor(to)));
}

/** The transitions of a series of {t, status} polls (polls with no status are skipped). */
function transitionsOf(polls, field = 'status') {
  const out = [];
  let prev = null;
  for (const p of polls) {
    const s = p[field];
    if (!s) continue;
    if (prev !== null && s !== prev) out.push({ t: p.t, from: prev, to: s });
    prev = s;
  }
  return out;
}

/**
 * Marks each transition `by: 'operator'` when an operator's PUT of that state came shortly
 * before it (within OPERATOR_LAG_S: the poll interval plus the gateway's own delay), else
 * `by: 'gateway'`. Flaps are the gateway's: an operator who switches back is not one.
 */
const OPERATOR_LAG_S = 2;
function attribute(transitions, operator) {
  return transitions.map((x) => ({
    ...x,
    by: operator.some((o) => o.status === x.to && o.t <= x.t && x.t - o.t <= OPERATOR_LAG_S) ? 'operator' : 'gateway',
  }));
}

/** Transitions undone by the next one within `dwell` seconds. */
function flapsOf(transitions, dwell) {
  let n = 0;
  for (let i = 0; i + 1 < transitions.length; i++) {
    const a = transitions[i];
    const b = transitions[i + 1];
    if (b.from === a.to && b.to === a.from && b.t - a.t < dwell) n++;
  }
  return n;
}

function detectOf(polls, faults, field = 'status') {
  if (faults.length === 0) return null;
  const start = faults[0][0];
  const hit = polls.find((p) => p.t >= start && p[field] && p[field] !== 'NORMAL');
  return hit ? hit.t - start : null;
}

function recoverOf(polls, faults, field = 'status') {
  if (faults.length === 0) return { seconds: null, recovered: null };
  const start = faults[0][0];
  const end = faults[faults.length - 1][1];
  const seen = polls.filter((p) => p[field]);
  const lastBad = seen.reduce((acc, p, i) => (p[field] !== 'NORMAL' ? i : acc), -1);
  if (lastBad === -1 || seen[lastBad].t < start) return { seconds: null, recovered: null }; // never left NORMAL
  if (lastBad === seen.length - 1) return { seconds: null, recovered: false };
  return { seconds: Math.max(0, seen[lastBad + 1].t - end), recovered: true };
}

/**
 * Figures of one mode's run.
 * @param run {groups, buckets, latencies, polls, faults, phases, dwell, seconds}
 */
function analyzeRun(run) {
  const { groups, buckets, latencies, polls, faults, phases, dwell } = run;
  const seconds = run.seconds;
  const within = groups.filter((g) => g.contract === 'within').map((g) => g.name);
  const phaseRows = {};
  for (const ph of phases) {
    const perGroup = {};
    for (const g of groups) {
      const tot = sumBuckets(slice(buckets[g.name], ph.from, ph.to));
      const lat = slice(latencies[g.name], ph.from, ph.to).flat().sort((a, b) => a - b);
      perGroup[g.name] = { ...tot, goodput: ratio(tot.ok || 0, tot.sent || 0), p50Ms: percentile(lat, 0.5), p99Ms: percentile(lat, 0.99) };
    }
    const w = sumBuckets(within.map((n) => perGroup[n]).map(({ sent, ok }) => ({ sent, ok })));
    const overloaded = groups.reduce((acc, g) => acc + (perGroup[g.name].overloaded || 0), 0);
    phaseRows[ph.name] = {
      from: ph.from,
      to: ph.to,
      withinContractGoodput: ratio(w.ok || 0, w.sent || 0),
      overloadRefusals: overloaded,
      groups: perGroup,
    };
  }

  const all = {};
  for (const g of groups) all[g.name] = sumBuckets(buckets[g.name].slice(0, seconds));
  const refusals = groups.reduce((acc, g) => acc + (all[g.name].overloaded || 0), 0);
  const wellAimed = groups.filter((g) => g.contract !== 'within').reduce((acc, g) => acc + (all[g.name].overloaded || 0), 0);

  const transitions = attribute(transitionsOf(polls), run.operator || []);
  const autoTransitions = transitionsOf(polls, 'automatic');
  const recovery = recoverOf(polls, faults);
  const autoRecovery = recoverOf(polls, faults, 'automatic');
  return {
    phases: phaseRows,
    detectSeconds: detectOf(polls, faults),
    recoverSeconds: recovery.seconds,
    recovered: recovery.recovered,
    transitions,
    transitionCount: transitions.length,
    flaps: flapsOf(transitions.filter((x) => x.by === 'gateway'), dwell),
    automatic: {
      detectSeconds: detectOf(polls, faults, 'automatic'),
      recoverSeconds: autoRecovery.seconds,
      transitionCount: autoTransitions.length,
      flaps: flapsOf(autoTransitions, dwell),
    },
    overloadRefusals: refusals,
    overloadRefusalsByGroup: Object.fromEntries(groups.map((g) => [g.name, all[g.name].overloaded || 0])),
    shedPrecision: ratio(wellAimed, refusals),
    totals: all,
    series: seriesOf(run),
  };
}

/** Per second: the worst state polled in it, goodput per group, refusals and 429s. */
function seriesOf({ groups, buckets, polls, seconds, upstream = [] }) {
  const state = Array.from({ length: seconds }, () => null);
  const automatic = Array.from({ length: seconds }, () => null);
  for (const p of polls) {
    const s = Math.floor(p.t);
    if (s < 0 || s >= seconds) continue;
    if (p.status && (state[s] === null || STATE_RANK[p.status] > STATE_RANK[state[s]])) state[s] = p.status;
    if (p.automatic && (automatic[s] === null || STATE_RANK[p.automatic] > STATE_RANK[automatic[s]])) automatic[s] = p.automatic;
  }
  const goodput = {};
  for (const g of groups) goodput[g.name] = buckets[g.name].slice(0, seconds).map((b) => (b.sent ? Math.round((1000 * b.ok) / b.sent) / 1000 : null));
  const overloaded = [];
  const limited = [];
  for (let s = 0; s < seconds; s++) {
    overloaded.push(groups.reduce((acc, g) => acc + buckets[g.name][s].overloaded, 0));
    limited.push(groups.reduce((acc, g) => acc + buckets[g.name][s].limited, 0));
  }
  const queue = Array.from({ length: seconds }, () => null);
  for (const u of upstream) {
    const s = Math.floor(u.t);
    if (s >= 0 && s < seconds) queue[s] = Math.max(queue[s] || 0, u.queueMax);
  }
  return { state, automatic, goodput, overloaded, limited, upstreamQueueMax: queue };
}

/**
 * Issue 12's targets that apply to this scenario, checked against one run's figures. Only the
 * full preset's timeline is the one the targets are set for; shorter runs are checked all the
 * same, for the shape. "At most one transition each way" reads: the state leaves NORMAL at most
 * once and comes back to NORMAL at most once (the stepwise way back is one way).
 */
function targetsOf(scenario, r) {
  const t = [];
  const check = (name, value, ok) => t.push({ name, value, met: value === null || value === undefined ? false : ok(value) });
  if (scenario === 'fault') {
    check('within-contract goodput over the fault ≥ 99 %', r.phases.fault.withinContractGoodput, (v) => v >= 0.99);
    check('DEGRADED or worse within 20 s', r.detectSeconds, (v) => v <= 20);
    check('NORMAL within 180 s of the fault clearing', r.recoverSeconds, (v) => v <= 180);
    check('0 flaps', r.flaps, (v) => v === 0);
    if (r.overloadRefusals === 0) t.push({ name: 'shed precision ≥ 99 %', value: null, met: true, note: 'no refusals' });
    else check('shed precision ≥ 99 %', r.shedPrecision, (v) => v >= 0.99);
  } else if (scenario === 'healthy') {
    check('0 transitions', r.transitionCount, (v) => v === 0);
    check('0 overload refusals', r.overloadRefusals, (v) => v === 0);
  } else if (scenario === 'flap') {
    const left = r.transitions.filter((x) => x.from === 'NORMAL').length;
    const back = r.transitions.filter((x) => x.to === 'NORMAL').length;
    check('leaves NORMAL at most once', left, (v) => v <= 1);
    check('returns to NORMAL at most once', back, (v) => v <= 1);
  }
  return t;
}

module.exports = { analyzeRun, targetsOf, attribute, transitionsOf, flapsOf, detectOf, recoverOf, percentile };
