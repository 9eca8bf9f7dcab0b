/**
 * What the automatic health state looks at (SPEC §8), gathered per instance and read once a
 * second: upstream latency against its own healthy baseline, the share of overload-class
 * failures, the in-flight guard's rejections and the event loop's lag. Recording is a few
 * integer increments per request (the latency goes into a fixed log-scale histogram, so a
 * second's median costs no array of samples).
 */

/** One second of one instance, as published to the fleet. */
export interface SignalSample {
  /** Upstream responses and failures in the second. */
  readonly requests: number;
  /** Median upstream latency (send → response head), ms; 0 with no requests. */
  readonly latencyMs: number;
  /** This instance's healthy baseline, ms; 0 while none is known. */
  readonly baselineMs: number;
  /** Timeouts, resets, refusals, and upstream 502/503/504 answers. */
  readonly failures: number;
  /** Requests the in-flight guard refused, and those it let through. */
  readonly rejections: number;
  readonly admitted: number;
  /** Event-loop delay, the second's 99th percentile, ms. */
  readonly loopLagMs: number;
}

const BUCKETS = 96;
/** Bucket i holds latencies up to MIN_MS · GROWTH^i: 0.1 ms to ~60 s in 15 % steps. */
const MIN_MS = 0.1;
const GROWTH = 1.15;
const LOG_GROWTH = Math.log(GROWTH);

function bucketOf(ms: number): number {
  if (ms <= MIN_MS) return 0;
  const i = Math.ceil(Math.log(ms / MIN_MS) / LOG_GROWTH);
  return i >= BUCKETS ? BUCKETS - 1 : i;
}

function upperMs(i: number): number {
  return MIN_MS * GROWTH ** i;
}

/** The recorder the request path writes into; `take` empties it once a second. */
export class SignalRecorder {
  private readonly latency = new Uint32Array(BUCKETS);
  private requests = 0;
  private failures = 0;

  /** An upstream response head arrived after `seconds`; `status` its status code. */
  response(seconds: number, status: number): void {
    this.latency[bucketOf(seconds * 1000)] += 1;
    this.requests += 1;
    if (status === 502 || status === 503 || status === 504) this.failures += 1;
  }

  /** The upstream failed without a response: `overload` for timeouts, resets and refusals. */
  failure(overload: boolean): void {
    this.requests += 1;
    if (overload) this.failures += 1;
  }

  /** The second's counts, then zeroed. */
  take(): { requests: number; failures: number; latencyMs: number } {
    const { requests, failures } = this;
    let latencyMs = 0;
    let responses = 0;
    for (let i = 0; i < BUCKETS; i++) responses += this.latency[i];
    if (responses > 0) {
      const half = Math.ceil(responses / 2);
      let seen = 0;
      for (let i = 0; i < BUCKETS; i++) {
        seen += this.latency[i];
        if (seen >= half) {
          latencyMs = upperMs(i);
          break;
        }
      }
    }
    this.latency.fill(0);
    this.requests = 0;
    this.failures = 0;
    return { requests, failures, latencyMs };
  }
}

/**
 * The upstream's healthy latency. It follows a faster upstream quickly and a slower one only
 * slowly, and only while the latency is within `tolerance` of it: during a long fault it does
 * not move at all, so a fault never becomes the new normal (Netflix's Gradient2 uses a
 * long-window average, which does drift into a sustained fault; Envoy's adaptive concurrency
 * re-measures a minimum RTT instead). Seconds with fewer than `minSamples` responses are
 * ignored.
 */
export class LatencyBaseline {
  private value = 0;

  constructor(private readonly tolerance: number, private readonly minSamples: number) {}

  get ms(): number {
    return this.value;
  }

  observe(latencyMs: number, samples: number): void {
    if (samples < this.minSamples || latencyMs <= 0) return;
    if (this.value === 0) this.value = latencyMs;
    else if (latencyMs < this.value) this.value += (latencyMs - this.value) * 0.2;
    else if (latencyMs < this.value * this.tolerance) this.value += (latencyMs - this.value) * 0.01;
  }
}
