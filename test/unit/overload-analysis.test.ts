/**
 * The overload experiment's figures (scripts/overload/analyze.js, pure): goodput per phase
 * and contract, time to detect and recover, transitions and flaps, shed precision, from
 * scripted buckets and health polls.
 */
import { analyzeRun, attribute, flapsOf, recoverOf, targetsOf, transitionsOf, type Bucket, type Group, type Poll, type RunResult, type State } from '../../scripts/overload/analyze';

const GROUPS: Group[] = [
  { name: 'free', tier: 'free', keys: 2, rate: 10, contract: 'free' },
  { name: 'pro-within', tier: 'pro', keys: 1, rate: 4, contract: 'within' },
  { name: 'pro-above', tier: 'pro', keys: 1, rate: 4, contract: 'above' },
  { name: 'enterprise', tier: 'enterprise', keys: 1, rate: 4, contract: 'within' },
];

function bucket(over: Partial<Bucket>): Bucket {
  return { sent: 0, ok: 0, limited: 0, overloaded: 0, timeout: 0, upstreamError: 0, otherStatus: 0, error: 0, ...over };
}

/** Polls every 0.5 s over `seconds`, the state given by `stateAt(t)`. */
function polls(seconds: number, stateAt: (t: number) => State): Poll[] {
  const out: Poll[] = [];
  for (let t = 0; t < seconds; t += 0.5) out.push({ t, status: stateAt(t) });
  return out;
}

describe('overload analysis', () => {
  it('counts goodput per phase over the within-contract groups only, and shed precision over every refusal', () => {
    const seconds = 6;
    // before 0–2, fault 2–4, after 4–6
    const buckets: Record<string, Bucket[]> = {
      free: Array.from({ length: seconds }, (_, s) => (s >= 2 && s < 4 ? bucket({ sent: 10, ok: 2, overloaded: 8 }) : bucket({ sent: 10, ok: 10 }))),
      'pro-within': Array.from({ length: seconds }, (_, s) => (s === 2 ? bucket({ sent: 4, ok: 1, overloaded: 1, timeout: 2 }) : bucket({ sent: 4, ok: 4 }))),
      'pro-above': Array.from({ length: seconds }, () => bucket({ sent: 4, ok: 3, limited: 1 })),
      enterprise: Array.from({ length: seconds }, () => bucket({ sent: 4, ok: 4 })),
    };
    const latencies = Object.fromEntries(GROUPS.map((g) => [g.name, Array.from({ length: seconds }, () => [10, 20, 30])]));
    const r = analyzeRun({
      groups: GROUPS, buckets, latencies, polls: polls(seconds, () => 'NORMAL'), faults: [[2, 4]], dwell: 2, seconds,
      phases: [{ name: 'before', from: 0, to: 2 }, { name: 'fault', from: 2, to: 4 }, { name: 'after', from: 4, to: 6 }],
    });
    expect(r.phases.before.withinContractGoodput).toBe(1);
    // fault: pro-within 1+4 of 8, enterprise 8 of 8
    expect(r.phases.fault.withinContractGoodput).toBeCloseTo(13 / 16, 10);
    expect(r.phases.fault.groups.free).toEqual(expect.objectContaining({ sent: 20, ok: 4, overloaded: 16, goodput: 0.2 }));
    expect(r.phases.fault.overloadRefusals).toBe(17);
    expect(r.overloadRefusals).toBe(17);
    expect(r.overloadRefusalsByGroup).toEqual({ free: 16, 'pro-within': 1, 'pro-above': 0, enterprise: 0 });
    expect(r.shedPrecision).toBeCloseTo(16 / 17, 10);
    expect(r.phases.after.groups['pro-above'].goodput).toBe(0.75);
    expect(r.phases.after.groups.enterprise.p50Ms).toBe(20);
    expect(r.series.overloaded).toEqual([0, 0, 9, 8, 0, 0]);
    expect(r.series.goodput.free).toEqual([1, 1, 0.2, 0.2, 1, 1]);
    // never left NORMAL: nothing detected, nothing to recover from
    expect([r.detectSeconds, r.recoverSeconds, r.recovered, r.transitionCount]).toEqual([null, null, null, 0]);
  });

  it('has no shed precision when nothing was refused', () => {
    const seconds = 2;
    const buckets = Object.fromEntries(GROUPS.map((g) => [g.name, [bucket({ sent: 1, ok: 1 }), bucket({ sent: 1, ok: 1 })]]));
    const latencies = Object.fromEntries(GROUPS.map((g) => [g.name, [[1], [1]]]));
    const r = analyzeRun({ groups: GROUPS, buckets, latencies, polls: [], faults: [], dwell: 2, seconds, phases: [{ name: 'healthy', from: 0, to: 2 }] });
    expect(r.shedPrecision).toBeNull();
    expect(r.phases.healthy.withinContractGoodput).toBe(1);
  });

  it('measures detection from the fault start and recovery from the fault end to NORMAL for good', () => {
    const p = polls(100, (t) => (t < 32 ? 'NORMAL' : t < 50 ? 'CRITICAL' : t < 95 ? 'DEGRADED' : 'NORMAL'));
    const r = analyzeRun({
      groups: [], buckets: {}, latencies: {}, polls: p, faults: [[20, 80]], dwell: 30, seconds: 100,
      phases: [{ name: 'before', from: 0, to: 20 }],
    });
    expect(r.detectSeconds).toBe(12);
    expect(r.recoverSeconds).toBe(15);
    expect(r.recovered).toBe(true);
    expect(r.transitions).toEqual([
      { t: 32, from: 'NORMAL', to: 'CRITICAL', by: 'gateway' },
      { t: 50, from: 'CRITICAL', to: 'DEGRADED', by: 'gateway' },
      { t: 95, from: 'DEGRADED', to: 'NORMAL', by: 'gateway' },
    ]);
    expect(r.flaps).toBe(0);
    expect(r.series.state.slice(31, 33)).toEqual(['NORMAL', 'CRITICAL']);
  });

  it('reports a state that is not NORMAL at the end as not recovered', () => {
    expect(recoverOf(polls(10, (t) => (t < 5 ? 'NORMAL' : 'DEGRADED')), [[2, 4]])).toEqual({ seconds: null, recovered: false });
  });

  it('counts a transition undone within the dwell as a flap, and not one undone later', () => {
    const square = polls(60, (t) => (Math.floor(t / 5) % 2 === 1 ? 'DEGRADED' : 'NORMAL'));
    const transitions = transitionsOf(square);
    expect(transitions).toHaveLength(11);
    // every transition but the last is undone 5 s later
    expect(flapsOf(transitions, 10)).toBe(10);
    expect(flapsOf(transitions, 5)).toBe(0);
    // a step on (NORMAL→DEGRADED→CRITICAL) is not undone
    expect(flapsOf([{ t: 0, from: 'NORMAL', to: 'DEGRADED' }, { t: 1, from: 'DEGRADED', to: 'CRITICAL' }], 10)).toBe(0);
  });

  it('skips polls that got no answer', () => {
    const p: Poll[] = [{ t: 0, status: 'NORMAL' }, { t: 1, status: null }, { t: 2, status: 'NORMAL' }, { t: 3, status: 'DEGRADED' }];
    expect(transitionsOf(p)).toEqual([{ t: 3, from: 'NORMAL', to: 'DEGRADED' }]);
  });
});

describe("issue 12's targets", () => {
  function result(over: Partial<RunResult>): RunResult {
    const base = analyzeRun({ groups: [], buckets: {}, latencies: {}, polls: [], faults: [], dwell: 60, seconds: 0, phases: [{ name: 'fault', from: 0, to: 0 }] });
    return { ...base, ...over };
  }
  const fault = (goodput: number | null) => ({ fault: { from: 0, to: 60, withinContractGoodput: goodput, overloadRefusals: 0, groups: {} } });

  it('checks the fault scenario: goodput, detection, recovery, flaps, shed precision', () => {
    const met = targetsOf('fault', result({ phases: fault(0.995), detectSeconds: 12, recoverSeconds: 170, flaps: 0, overloadRefusals: 100, shedPrecision: 0.99 }));
    expect(met.map((t) => t.met)).toEqual([true, true, true, true, true]);
    const missed = targetsOf('fault', result({ phases: fault(0.98), detectSeconds: null, recoverSeconds: 181, flaps: 1, overloadRefusals: 100, shedPrecision: 0.9 }));
    expect(missed.map((t) => t.met)).toEqual([false, false, false, false, false]);
    // no refusals at all: nothing was shed wrongly
    expect(targetsOf('fault', result({ phases: fault(1), overloadRefusals: 0, shedPrecision: null }))[4]).toEqual(expect.objectContaining({ met: true, note: 'no refusals' }));
  });

  it('checks the healthy scenario for false alarms and the flap scenario for one excursion', () => {
    expect(targetsOf('healthy', result({ transitionCount: 0, overloadRefusals: 0 })).map((t) => t.met)).toEqual([true, true]);
    expect(targetsOf('healthy', result({ transitionCount: 1, overloadRefusals: 3 })).map((t) => t.met)).toEqual([false, false]);
    const stepwise = [
      { t: 1, from: 'NORMAL' as const, to: 'CRITICAL' as const },
      { t: 70, from: 'CRITICAL' as const, to: 'DEGRADED' as const },
      { t: 140, from: 'DEGRADED' as const, to: 'NORMAL' as const },
    ];
    expect(targetsOf('flap', result({ transitions: stepwise })).map((t) => t.met)).toEqual([true, true]);
    const twice = [...stepwise, { t: 150, from: 'NORMAL' as const, to: 'DEGRADED' as const }];
    expect(targetsOf('flap', result({ transitions: twice })).map((t) => [t.value, t.met])).toEqual([[2, false], [1, true]]);
  });
});

describe('flaps are the gateway’s own', () => {
  it('does not count an operator who switches back within the dwell as a flap', () => {
    const p = polls(120, (t) => (t >= 40.5 && t < 100.5 ? 'DEGRADED' : 'NORMAL'));
    const operator = [{ t: 40, status: 'DEGRADED' as const }, { t: 100, status: 'NORMAL' as const }];
    const r = analyzeRun({ groups: [], buckets: {}, latencies: {}, polls: p, faults: [[30, 90]], dwell: 61, seconds: 120, phases: [], operator });
    expect(r.transitions.map((x) => x.by)).toEqual(['operator', 'operator']);
    expect(r.flaps).toBe(0);
    // the same transitions made by the gateway are a flap
    expect(analyzeRun({ groups: [], buckets: {}, latencies: {}, polls: p, faults: [[30, 90]], dwell: 61, seconds: 120, phases: [] }).flaps).toBe(1);
  });

  it('attributes a transition to the operator only when the PUT of that state came just before it', () => {
    const transitions = [{ t: 10, from: 'NORMAL' as const, to: 'DEGRADED' as const }, { t: 20, from: 'DEGRADED' as const, to: 'NORMAL' as const }];
    expect(attribute(transitions, [{ t: 9.5, status: 'DEGRADED' }, { t: 15, status: 'NORMAL' }]).map((x) => x.by)).toEqual(['operator', 'gateway']);
    expect(attribute(transitions, [{ t: 10.5, status: 'DEGRADED' }]).map((x) => x.by)).toEqual(['gateway', 'gateway']);
  });
});
