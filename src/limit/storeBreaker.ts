import CircuitBreaker from 'opossum';
import type { BreakerState } from '../observability/metrics';

export interface StoreBreakerOptions {
  /** A store call slower than this is a failure (STORE_TIMEOUT_MS). */
  readonly timeoutMs: number;
  /** How long the breaker stays open before a half-open probe. */
  readonly resetMs: number;
  /**
   * A cheap store call (PING) the breaker makes itself on every half-open, so it closes
   * when the store is back even when no request comes to probe it. Without it a breaker
   * that opened stays half-open until traffic arrives — and with STORE_FAILURE_MODE=closed
   * an instance kept out of rotation by /readyz never gets any.
   */
  readonly probe?: () => Promise<unknown>;
  /** Every transition, with the state it left (`open` follows `half_open` on a failed probe). */
  readonly onStateChange: (state: BreakerState, previous: BreakerState) => void;
}

type Thunk = () => Promise<unknown>;

/**
 * The only importer of opossum: one breaker in front of every store call on the
 * request path. Its timeout is set explicitly — opossum's default is 10 s, which
 * would stall every request while Redis hangs.
 */
export class StoreBreaker {
  private readonly breaker: CircuitBreaker<[Thunk], unknown>;
  private current: BreakerState = 'closed';
  private readonly timeoutMs: number;

  constructor(opts: StoreBreakerOptions) {
    this.timeoutMs = opts.timeoutMs;
    this.breaker = new CircuitBreaker((fn: Thunk) => this.withTimeout(fn), {
      // Our own timeout (withTimeout), not opossum's: see there.
      timeout: false,
      resetTimeout: opts.resetMs,
      errorThresholdPercentage: 50,
      volumeThreshold: 5,
      // The error rate is taken over this rolling window. opossum's default (10 s) holds the
      // successes from before an outage: with Redis hung, every request then waits the full
      // timeout for seconds until failures outnumber them. One second opens within ~0.5 s
      // under load, and a close is not undone by failures left over from the outage.
      rollingCountTimeout: 1000,
      rollingCountBuckets: 10,
      // Neither is read, and both cost on every call: with percentiles on, opossum keeps
      // every call's latency and sorts the whole window on each 100 ms snapshot (measured:
      // ~24k instructions per request at 400 req/s, growing with the rate).
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    const report = (state: BreakerState) => {
      const previous = this.current;
      this.current = state;
      opts.onStateChange(state, previous);
    };
    this.breaker.on('open', () => report('open'));
    this.breaker.on('close', () => report('closed'));
    this.breaker.on('halfOpen', () => {
      report('half_open');
      // opossum lets exactly one call through while half-open: make it the probe. Its
      // outcome closes or re-opens the breaker; requests meanwhile use the failure mode.
      const probe = opts.probe;
      if (probe !== undefined) this.breaker.fire(probe).catch(() => undefined);
    });
  }

  /**
   * Rejects with ETIMEDOUT when `fn` has not settled `timeoutMs` after the call — as
   * measured after the I/O that is already waiting. Node runs expired timers before it
   * polls sockets (https://nodejs.org/en/learn/asynchronous-work/event-loop-timers-and-nexttick),
   * so when this process was descheduled or its loop busy for longer than the timeout, a
   * plain timer (opossum's) fires before the store's reply, already in the socket buffer,
   * is read: the store gets blamed for our own stall, the request falls back, and enough of
   * those open the breaker on a healthy store. setImmediate runs after this turn's poll
   * phase, so a reply that has arrived by then still counts as an answer in time.
   */
  private withTimeout(fn: Thunk): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        setImmediate(() => {
          if (settled) return;
          settled = true;
          reject(Object.assign(new Error(`store call timed out after ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
        });
      }, this.timeoutMs);
      fn().then(
        (value) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  call<T>(fn: () => Promise<T>): Promise<T> {
    return this.breaker.fire(fn) as Promise<T>;
  }

  /** True while calls fail fast; callers use STORE_FAILURE_MODE without trying. */
  get isOpen(): boolean {
    return this.breaker.opened;
  }

  get state(): BreakerState {
    return this.current;
  }

  shutdown(): void {
    this.breaker.shutdown();
  }
}
