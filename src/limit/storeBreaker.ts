import CircuitBreaker from 'opossum';
import type { BreakerState } from '../observability/metrics';

export interface StoreBreakerOptions {
  /** A store call slower than this is a failure (STORE_TIMEOUT_MS). */
  readonly timeoutMs: number;
  /** How long the breaker stays open before a half-open probe. */
  readonly resetMs: number;
  readonly onStateChange: (state: BreakerState) => void;
}

type Thunk = () => Promise<unknown>;

/**
 * The only importer of opossum: one breaker in front of every store call on the
 * request path. Its timeout is set explicitly — opossum's default is 10 s, which
 * would stall every request while Redis hangs.
 */
export class StoreBreaker {
  private readonly breaker: CircuitBreaker<[Thunk], unknown>;

  constructor(opts: StoreBreakerOptions) {
    this.breaker = new CircuitBreaker((fn: Thunk) => fn(), {
      timeout: opts.timeoutMs,
      resetTimeout: opts.resetMs,
      errorThresholdPercentage: 50,
      volumeThreshold: 5,
      rollingCountTimeout: 10_000,
      rollingCountBuckets: 10,
    });
    this.breaker.on('open', () => opts.onStateChange('open'));
    this.breaker.on('halfOpen', () => opts.onStateChange('half_open'));
    this.breaker.on('close', () => opts.onStateChange('closed'));
  }

  call<T>(fn: () => Promise<T>): Promise<T> {
    return this.breaker.fire(fn) as Promise<T>;
  }

  /** True while calls fail fast; callers use STORE_FAILURE_MODE without trying. */
  get isOpen(): boolean {
    return this.breaker.opened;
  }

  get state(): BreakerState {
    if (this.breaker.halfOpen) return 'half_open';
    return this.breaker.opened ? 'open' : 'closed';
  }

  shutdown(): void {
    this.breaker.shutdown();
  }
}
