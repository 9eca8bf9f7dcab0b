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

/** The median of a latency histogram (a bucket's upper bound, within 15 %); 0 when empty. */
function medianMs(h: Uint32Array, count: number): number {
  if (count === 0) return 0;
  const half = Math.ceil(count / 2);
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += h[i];
    if (seen >= half) return upperMs(i);
  }
  return upperMs(BUCKETS - 1);
}

/**
 * The recorder the request path writes into. Read twice over: every 250 ms by the adaptive
 * concurrency limit (`takeQuarter`), which must react within the first second of a fault, and
 * every second by the health signals (`take`), which see the whole second.
 */
export class SignalRecorder {
  private readonly quarter = new Uint32Array(BUCKETS);
  private quarterCount = 0;
  private readonly second = new Uint32Array(BUCKETS);
  private secondCount = 0;
  private requests = 0;
  private failures = 0;

  /** An upstream response head arrived after `seconds`; `status` its status code. */
  response(seconds: number, status: number): void {
    const b = bucketOf(seconds * 1000);
    this.quarter[b] += 1;
    this.quarterCount += 1;
    this.second[b] += 1;
    this.secondCount += 1;
    this.requests += 1;
    if (status === 502 || status === 503 || status === 504) this.failures += 1;
  }

  /** The upstream failed without a response: `overload` for timeouts, resets and refusals. */
  failure(overload: boolean): void {
    this.requests += 1;
    if (overload) this.failures += 1;
  }

  /** The responses since the last call: their median latency and count. */
  takeQuarter(): { latencyMs: number; responses: number } {
    const responses = this.quarterCount;
    const latencyMs = medianMs(this.quarter, responses);
    this.quarter.fill(0);
    this.quarterCount = 0;
    return { latencyMs, responses };
  }

  /** The second's counts and median latency, then zeroed. */
  take(): { requests: number; failures: number; latencyMs: number } {
    const { requests, failures } = this;
    const latencyMs = medianMs(this.second, this.secondCount);
    this.second.fill(0);
    this.secondCount = 0;
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
 * ignored, and it counts only after five such seconds: a cold gateway's first seconds are slow.
 */
export class LatencyBaseline {
  private value = 0;
  private seen = 0;

  /** `warmupSeconds`: qualifying seconds before the baseline counts (a cold start is slow). */
  constructor(private readonly tolerance: number, private readonly minSamples: number, private readonly warmupSeconds = 5) {}

  /** The baseline, or 0 while it is still being learned. */
  get ms(): number {
    return this.seen >= this.warmupSeconds ? this.value : 0;
  }

  observe(latencyMs: number, samples: number): void {
    if (samples < this.minSamples || latencyMs <= 0) return;
    this.seen += 1;
    if (this.value === 0) this.value = latencyMs;
    else if (latencyMs < this.value) this.value += (latencyMs - this.value) * (this.seen <= this.warmupSeconds ? 0.5 : 0.2);
    else if (latencyMs < this.value * this.tolerance) this.value += (latencyMs - this.value) * 0.01;
  }
}
