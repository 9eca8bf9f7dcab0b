import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Clock } from '../clock';
import type { ConcurrencyLimit, HealthTunables } from '../config/load';
import type { Control } from '../sync/control';
import type { HealthFleet } from '../sync/healthFleet';
import { isSlow, nextLimit } from './adaptiveLimit';
import { assess, combine, type AssessThresholds, type FleetSignals } from './assess';
import type { AutomaticRecord, HealthState } from './healthState';
import { InflightGuard } from './inflightGuard';
import { LatencyBaseline, SignalRecorder, type SignalSample } from './signals';
import { initialMachine, step, type Machine, type MachineSettings, type Transition } from './stateMachine';

export interface HealthControllerDeps {
  readonly health: HealthState;
  readonly control: Control;
  readonly fleet: HealthFleet;
  /** False while the store's breaker is open: the instance then decides alone. */
  readonly storeUsable: () => boolean;
  readonly clock: Clock;
  readonly tunables: HealthTunables;
  readonly concurrency: ConcurrencyLimit;
  readonly onTransition: (t: Transition, signals: FleetSignals) => void;
  readonly onWarn: (message: string, err: Error) => void;
}

const TICK_MS = 1000;
/** The adaptive limit's period: fast enough to bound the upstream's queue within the first second of a fault. */
const LIMIT_TICK_MS = 250;
/** The event-loop monitor's sampling interval; its histogram records whole intervals, so this is taken off. */
const LOOP_RESOLUTION_MS = 20;

function thresholdsOf(t: HealthTunables): AssessThresholds {
  return {
    latencyRatio: t.latencyRatio, latencyRatioCritical: t.latencyRatioCritical,
    failureShare: t.failureShare, failureShareCritical: t.failureShareCritical,
    minSamples: t.minSamples, rejectionShare: t.rejectionShare,
    loopLagMs: t.loopLagMs, loopLagCriticalMs: t.loopLagCriticalMs,
  };
}

function machineSettingsOf(t: HealthTunables): MachineSettings {
  return { enterWindowS: t.enterWindowS, enterSeconds: t.enterSeconds, dwellS: t.dwellS, dwellMaxS: t.dwellMaxS, flapWindowS: t.flapWindowS, rampS: t.rampS };
}

/**
 * The once-a-second loop of SPEC §8: reads this instance's signals, sets the adaptive
 * in-flight limit, shares the signals with the fleet, and — on the instance holding the
 * decider lease, or on every instance while the store is unusable — steps the state machine
 * and publishes the automatic state. The request path only records into `recorder` and asks
 * `guard`; nothing here runs per request.
 */
export class HealthController {
  readonly recorder = new SignalRecorder();
  readonly guard: InflightGuard | null;
  private limit: number;
  private readonly baseline: LatencyBaseline;
  private readonly loop: IntervalHistogram;
  private readonly thresholds: AssessThresholds;
  private readonly settings: MachineSettings;
  private machine: Machine;
  /** The lease epoch this instance decides under; null while another instance decides. */
  private epoch: number | null = null;
  private lastSignals: FleetSignals = combine([]);
  private timer: NodeJS.Timeout | null = null;
  private limitTimer: NodeJS.Timeout | null = null;
  /** Quarter seconds in a row whose latency was over the tolerance. */
  private slowWindows = 0;
  private running = false;

  constructor(private readonly deps: HealthControllerDeps) {
    const t = deps.tunables;
    this.limit = deps.concurrency === 'auto' ? t.concurrencyInitial : typeof deps.concurrency === 'number' ? deps.concurrency : Infinity;
    this.guard = deps.concurrency === 'off' ? null : new InflightGuard(() => this.limit);
    this.baseline = new LatencyBaseline(t.latencyRatio, t.minSamples);
    this.loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.thresholds = thresholdsOf(t);
    this.settings = machineSettingsOf(t);
    this.machine = initialMachine(deps.clock(), this.settings);
  }

  /** The guard's limit now (Infinity when off). */
  get concurrencyLimit(): number {
    return this.limit;
  }

  get signals(): FleetSignals {
    return this.lastSignals;
  }

  get deciding(): boolean {
    return this.epoch !== null;
  }

  start(): void {
    this.loop.enable();
    this.timer = setInterval(() => {
      if (this.running) return; // a slow store call: skip a beat rather than pile up
      this.running = true;
      this.tick().catch((err: Error) => this.deps.onWarn('health tick failed', err)).finally(() => { this.running = false; });
    }, TICK_MS);
    this.timer.unref();
    if (this.deps.concurrency === 'auto') {
      this.limitTimer = setInterval(() => this.adaptLimit(), LIMIT_TICK_MS);
      this.limitTimer.unref();
    }
  }

  /** Every 250 ms: the in-flight limit from the last quarter second's latency and peak concurrency. */
  adaptLimit(): void {
    if (this.guard === null) return;
    const q = this.recorder.takeQuarter();
    const t = this.deps.tunables;
    const { peak, peakHigh, sawLowest } = this.guard.takePeak();
    const minSamples = Math.max(3, Math.ceil(t.minSamples / 4));
    if (q.responses >= minSamples) this.slowWindows = isSlow(q.latencyMs, this.baseline.ms, t.concurrencyTolerance) ? this.slowWindows + 1 : 0;
    this.limit = nextLimit(this.limit, {
      latencyMs: q.latencyMs, baselineMs: this.baseline.ms, peakInflight: peak, samples: q.responses, highDemand: sawLowest ? peakHigh : null, slowWindows: this.slowWindows,
    }, { initial: t.concurrencyInitial, min: t.concurrencyMin, max: t.concurrencyMax, tolerance: t.concurrencyTolerance }, minSamples);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.limitTimer) clearInterval(this.limitTimer);
    this.loop.disable();
    if (this.epoch !== null && this.deps.storeUsable()) await this.deps.fleet.resign().catch(() => undefined);
  }

  /** One second: exported for tests that drive it without timers. */
  async tick(): Promise<void> {
    const now = this.deps.clock();
    const sample = this.sample();
    const { health } = this.deps;
    health.tick(now, this.settings.rampS);
    if (health.mode === 'manual') return;

    let samples: readonly SignalSample[] = [sample];
    let lead = true;
    if (this.deps.storeUsable()) {
      try {
        samples = await this.deps.fleet.exchange(sample);
        const epoch = await this.deps.fleet.lead();
        if (epoch !== null && epoch !== this.epoch) this.takeOver(now);
        this.epoch = epoch;
        lead = epoch !== null;
      } catch (err) {
        this.deps.onWarn('could not share health signals; deciding alone', err as Error);
        samples = [sample];
      }
    }
    this.lastSignals = combine(samples);
    if (!lead) {
      this.follow();
      return;
    }
    const { machine, transition } = step(this.machine, assess(this.lastSignals, this.thresholds), now, this.settings);
    this.machine = machine;
    if (transition !== null) this.deps.onTransition(transition, this.lastSignals);
    await this.publish(now);
  }

  /** This instance's last second. */
  private sample(): SignalSample {
    const taken = this.recorder.take();
    const guard = this.guard?.take() ?? { rejections: 0, admitted: 0 };
    this.baseline.observe(taken.latencyMs, taken.requests);
    const loopLagMs = this.loop.count > 0 ? Math.max(0, this.loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS) : 0;
    this.loop.reset();
    return {
      requests: taken.requests, latencyMs: Math.round(taken.latencyMs * 100) / 100, baselineMs: Math.round(this.baseline.ms * 100) / 100,
      failures: taken.failures, rejections: guard.rejections, admitted: guard.admitted, loopLagMs: Math.round(loopLagMs),
    };
  }

  /** A new lease: continue from the fleet's current automatic state, not from NORMAL. */
  private takeOver(now: number): void {
    const a = this.deps.health.automatic;
    this.machine = a === null ? initialMachine(now, this.settings) : { ...initialMachine(now, this.settings, a.status, Date.parse(a.since)), reasons: a.reasons };
  }

  /** Not deciding: keep the machine where the decider is, ready to take over. */
  private follow(): void {
    const a = this.deps.health.automatic;
    if (a !== null && a.status !== this.machine.status) this.machine = initialMachine(Date.parse(a.since), this.settings, a.status, Date.parse(a.since));
  }

  private async publish(now: number): Promise<void> {
    const m = this.machine;
    const previous = this.deps.health.automatic;
    const record: AutomaticRecord = {
      status: m.status,
      since: new Date(m.since).toISOString(),
      reasons: m.reasons,
      signals: { ...this.lastSignals, concurrencyLimit: Number.isFinite(this.limit) ? this.limit : 0 },
      recovered: m.status === 'NORMAL' && m.improvedAt !== null,
      epoch: this.epoch ?? previous?.epoch ?? 0,
    };
    if (this.epoch !== null && this.deps.storeUsable()) {
      try {
        if (await this.deps.control.setAutomatic(record, this.deps.fleet.id)) {
          this.deps.health.setAutomatic(record, now);
          return;
        }
        this.epoch = null; // lost the lease meanwhile: the new decider's state will arrive
        return;
      } catch (err) {
        this.deps.onWarn('could not publish the automatic health state; applying it here', err as Error);
      }
    }
    this.deps.health.setAutomatic(record, now);
  }
}

