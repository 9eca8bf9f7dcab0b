import type { HealthStatus } from '../limit/policy';
import type { SignalSample } from './signals';

/** Thresholds of the automatic state; each is a setting (docs/health.md). */
export interface AssessThresholds {
  /** Upstream latency ÷ its baseline that means DEGRADED / CRITICAL. */
  readonly latencyRatio: number;
  readonly latencyRatioCritical: number;
  /** Share of upstream requests failing with overload-class errors. */
  readonly failureShare: number;
  readonly failureShareCritical: number;
  /** Latency and failure shares count only with at least this many upstream requests in the window. */
  readonly minSamples: number;
  /** Share of requests the in-flight guard refused that means DEGRADED. */
  readonly rejectionShare: number;
  /** Event-loop lag (p99, ms) that means DEGRADED / CRITICAL. */
  readonly loopLagMs: number;
  readonly loopLagCriticalMs: number;
}

export interface Assessment {
  /** The worst state the signals call for. */
  readonly status: HealthStatus;
  /** Why, for humans: one entry per signal over a threshold. */
  readonly reasons: readonly string[];
}

/** The fleet's signals summed (or, for latency and lag, combined) from its instances. */
export interface FleetSignals {
  readonly instances: number;
  readonly requests: number;
  /** Median latency ÷ baseline, weighted by each instance's requests; 0 with no baseline. */
  readonly latencyRatio: number;
  readonly latencyMs: number;
  readonly baselineMs: number;
  readonly failures: number;
  readonly failureShare: number;
  readonly rejections: number;
  readonly rejectionShare: number;
  readonly loopLagMs: number;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Combines one second of every instance's samples. */
export function combine(samples: readonly SignalSample[]): FleetSignals {
  let requests = 0;
  let failures = 0;
  let rejections = 0;
  let admitted = 0;
  let loopLagMs = 0;
  let weighted = 0;
  let weight = 0;
  let latency = 0;
  let baseline = 0;
  for (const s of samples) {
    requests += s.requests;
    failures += s.failures;
    rejections += s.rejections;
    admitted += s.admitted;
    loopLagMs = Math.max(loopLagMs, s.loopLagMs);
    if (s.baselineMs > 0 && s.latencyMs > 0 && s.requests > 0) {
      weighted += (s.latencyMs / s.baselineMs) * s.requests;
      latency += s.latencyMs * s.requests;
      baseline += s.baselineMs * s.requests;
      weight += s.requests;
    }
  }
  return {
    instances: samples.length,
    requests,
    latencyRatio: weight === 0 ? 0 : round2(weighted / weight),
    latencyMs: weight === 0 ? 0 : round2(latency / weight),
    baselineMs: weight === 0 ? 0 : round2(baseline / weight),
    failures,
    failureShare: requests === 0 ? 0 : round2(failures / requests),
    rejections,
    rejectionShare: rejections + admitted === 0 ? 0 : round2(rejections / (rejections + admitted)),
    loopLagMs: Math.round(loopLagMs),
  };
}

/** Pure: what state the signals of one second call for, and why. */
export function assess(s: FleetSignals, t: AssessThresholds): Assessment {
  const critical: string[] = [];
  const degraded: string[] = [];
  const enough = s.requests >= t.minSamples;
  if (enough && s.latencyRatio > 0) {
    const why = `upstream latency ${s.latencyRatio}× its baseline (${s.latencyMs} ms vs ${s.baselineMs} ms)`;
    if (s.latencyRatio >= t.latencyRatioCritical) critical.push(why);
    else if (s.latencyRatio >= t.latencyRatio) degraded.push(why);
  }
  if (enough) {
    const why = `${Math.round(s.failureShare * 100)} % of upstream requests failed with timeouts, resets or 502/503/504`;
    if (s.failureShare >= t.failureShareCritical) critical.push(why);
    else if (s.failureShare >= t.failureShare) degraded.push(why);
  }
  if (s.rejections >= t.minSamples && s.rejectionShare >= t.rejectionShare) {
    degraded.push(`the in-flight guard refused ${s.rejections} requests (${Math.round(s.rejectionShare * 100)} %)`);
  }
  if (s.loopLagMs >= t.loopLagCriticalMs) critical.push(`event-loop lag ${s.loopLagMs} ms`);
  else if (s.loopLagMs >= t.loopLagMs) degraded.push(`event-loop lag ${s.loopLagMs} ms`);
  if (critical.length > 0) return { status: 'CRITICAL', reasons: [...critical, ...degraded] };
  if (degraded.length > 0) return { status: 'DEGRADED', reasons: degraded };
  return { status: 'NORMAL', reasons: [] };
}
