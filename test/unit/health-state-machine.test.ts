import { assess, combine, type Assessment, type AssessThresholds } from '../../src/health/assess';
import { initialMachine, step, type Machine, type MachineSettings, type Transition } from '../../src/health/stateMachine';
import type { HealthStatus } from '../../src/limit/policy';

const S: MachineSettings = { enterWindowS: 5, enterSeconds: 3, dwellS: 60, dwellMaxS: 600, flapWindowS: 300, rampS: 60 };
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);

const called = (status: HealthStatus): Assessment => ({ status, reasons: status === 'NORMAL' ? [] : [`signals call for ${status}`] });

/** Runs one assessment a second from `start`; returns every transition with the second it happened. */
function run(script: readonly HealthStatus[], from: Machine = initialMachine(T0, S), start = T0) {
  let m = from;
  const transitions: Array<Transition & { second: number }> = [];
  script.forEach((status, i) => {
    const r = step(m, called(status), start + (i + 1) * 1000, S);
    m = r.machine;
    if (r.transition) transitions.push({ ...r.transition, second: i + 1 });
  });
  return { machine: m, transitions };
}

const seconds = (n: number, status: HealthStatus): HealthStatus[] => Array(n).fill(status);

describe('the automatic state machine (injected clock, scripted signals)', () => {
  test('a sustained fault enters DEGRADED within the entry window; one bad second does not', () => {
    expect(run(['DEGRADED', 'NORMAL', 'NORMAL', 'DEGRADED', 'NORMAL']).transitions).toEqual([]);
    const { transitions, machine } = run(seconds(10, 'DEGRADED'));
    expect(transitions).toEqual([{ from: 'NORMAL', to: 'DEGRADED', reasons: ['signals call for DEGRADED'], second: 3 }]);
    expect(machine.status).toBe('DEGRADED');
  });

  test('recovery waits a whole quiet dwell, then steps to NORMAL', () => {
    const { transitions } = run([...seconds(10, 'DEGRADED'), ...seconds(70, 'NORMAL')]);
    expect(transitions.map((t) => [t.from, t.to, t.second])).toEqual([['NORMAL', 'DEGRADED', 3], ['DEGRADED', 'NORMAL', 71]]);
  });

  test('CRITICAL is entered straight from NORMAL and left stepwise: CRITICAL → DEGRADED → NORMAL, a dwell each', () => {
    const { transitions } = run([...seconds(5, 'CRITICAL'), ...seconds(130, 'NORMAL')]);
    expect(transitions.map((t) => [t.from, t.to, t.second])).toEqual([
      ['NORMAL', 'CRITICAL', 3],
      ['CRITICAL', 'DEGRADED', 66],
      ['DEGRADED', 'NORMAL', 126],
    ]);
  });

  test('from DEGRADED, signals calling for CRITICAL escalate; signals calling for DEGRADED in CRITICAL count as quiet', () => {
    const { transitions } = run([...seconds(5, 'DEGRADED'), ...seconds(5, 'CRITICAL'), ...seconds(65, 'DEGRADED')]);
    expect(transitions.map((t) => [t.from, t.to, t.second])).toEqual([['NORMAL', 'DEGRADED', 3], ['DEGRADED', 'CRITICAL', 8], ['CRITICAL', 'DEGRADED', 71]]);
  });

  test('a square-wave fault (10 s on, 10 s off, 2 min) gives one transition each way', () => {
    const wave: HealthStatus[] = [];
    for (let i = 0; i < 6; i++) wave.push(...seconds(10, 'DEGRADED'), ...seconds(10, 'NORMAL'));
    const { transitions } = run([...wave, ...seconds(120, 'NORMAL')]);
    expect(transitions.map((t) => [t.from, t.to])).toEqual([['NORMAL', 'DEGRADED'], ['DEGRADED', 'NORMAL']]);
  });

  test('a flap (worse again soon after recovering) doubles the dwell, at most one transition per dwell', () => {
    // Fault, recovery after 60 s quiet, fault again at once: the next recovery needs 120 s.
    const first = run([...seconds(5, 'DEGRADED'), ...seconds(61, 'NORMAL')]);
    expect(first.machine.status).toBe('NORMAL');
    const start = T0 + 66_000;
    const second = run([...seconds(5, 'DEGRADED'), ...seconds(119, 'NORMAL')], first.machine, start);
    expect(second.transitions.map((t) => [t.from, t.to])).toEqual([['NORMAL', 'DEGRADED']]);
    expect(second.machine.dwellMs).toBe(120_000);
    const later = step(second.machine, called('NORMAL'), start + 126_000, S);
    expect(later.transition).toMatchObject({ from: 'DEGRADED', to: 'NORMAL' });
  });

  test('the dwell never grows past dwellMaxS, and a long calm NORMAL forgets old flaps', () => {
    let m = initialMachine(T0, S);
    let now = T0;
    const tick = (status: HealthStatus) => {
      now += 1000;
      m = step(m, called(status), now, S).machine;
    };
    for (let flap = 0; flap < 6; flap++) {
      for (let i = 0; i < 3; i++) tick('DEGRADED');
      while (m.status !== 'NORMAL') tick('NORMAL');
    }
    expect(m.dwellMs).toBe(600_000);
    for (let i = 0; i < 301; i++) tick('NORMAL');
    expect(m.dwellMs).toBe(60_000);
  });
});

describe('assess: one second of fleet signals → the state they call for', () => {
  const t: AssessThresholds = {
    latencyRatio: 2, latencyRatioCritical: 5, failureShare: 0.1, failureShareCritical: 0.5,
    minSamples: 20, rejectionShare: 0.05, loopLagMs: 250, loopLagCriticalMs: 1000,
  };
  const sample = { requests: 100, latencyMs: 50, baselineMs: 50, failures: 0, rejections: 0, admitted: 100, loopLagMs: 0 };

  test('healthy signals call for NORMAL', () => {
    expect(assess(combine([sample, sample]), t)).toEqual({ status: 'NORMAL', reasons: [] });
  });

  test('latency against the baseline, weighted by each instance’s requests', () => {
    const slow = assess(combine([{ ...sample, latencyMs: 125 }, { ...sample, latencyMs: 125 }]), t);
    expect(slow.status).toBe('DEGRADED');
    expect(slow.reasons[0]).toMatch(/upstream latency 2\.5× its baseline/);
    expect(assess(combine([{ ...sample, latencyMs: 300 }]), t).status).toBe('CRITICAL');
    // One slow instance among busier healthy ones stays below the ratio.
    expect(assess(combine([{ ...sample, latencyMs: 125, requests: 10 }, { ...sample, requests: 100 }]), t).status).toBe('NORMAL');
  });

  test('failures count only with the minimum sample; the guard’s rejections and event-loop lag count too', () => {
    expect(assess(combine([{ ...sample, requests: 10, failures: 10 }]), t).status).toBe('NORMAL');
    expect(assess(combine([{ ...sample, failures: 15 }]), t).status).toBe('DEGRADED');
    expect(assess(combine([{ ...sample, failures: 60 }]), t).status).toBe('CRITICAL');
    expect(assess(combine([{ ...sample, rejections: 20, admitted: 80 }]), t).status).toBe('DEGRADED');
    expect(assess(combine([{ ...sample, rejections: 19, admitted: 80 }]), t).status).toBe('NORMAL');
    expect(assess(combine([{ ...sample, rejections: 30, admitted: 1000 }]), t).status).toBe('NORMAL');
    expect(assess(combine([{ ...sample, loopLagMs: 300 }]), t).status).toBe('DEGRADED');
    expect(assess(combine([{ ...sample, loopLagMs: 1500 }]), t).status).toBe('CRITICAL');
  });
});
