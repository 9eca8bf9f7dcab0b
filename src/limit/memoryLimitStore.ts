import type { Clock } from '../clock';
import { gcra, slidingWindow, type SlidingWindowState } from './algorithms';
import { limitResult, type LimitRequest, type LimitResult, type LimitStore } from './store';

interface Entry {
  sw?: SlidingWindowState;
  tat?: number;
  /** Epoch ms after which the entry holds nothing that matters. */
  expiresAt: number;
}

/** In-process store: the same arithmetic as the Redis scripts, state in a Map. */
export class MemoryLimitStore implements LimitStore {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly clock: Clock, sweepIntervalMs = 10_000) {
    // Bounded memory with many keys: drop entries whose window or bucket has run out.
    this.sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweeper.unref();
  }

  decide(req: LimitRequest): Promise<LimitResult> {
    return Promise.resolve(this.decideSync(req, false));
  }

  peek(req: LimitRequest): Promise<LimitResult> {
    return Promise.resolve(this.decideSync(req, true));
  }

  /** Synchronous form, used directly by the breaker's `local` fallback. */
  decideSync(req: LimitRequest, dryRun: boolean): LimitResult {
    const now = this.clock();
    const key = `${req.algorithm}:${req.id}`;
    const entry = this.entries.get(key);
    if (req.algorithm === 'gcra') {
      const { decision, nextTat } = gcra(entry?.tat ?? null, now, req.limit, req.windowMs);
      if (nextTat !== null && !dryRun) this.entries.set(key, { tat: nextTat, expiresAt: nextTat });
      return limitResult(decision.allowed, decision.remaining, decision.resetMs, decision.retryAtMs, now);
    }
    const { decision, next } = slidingWindow(entry?.sw ?? null, now, req.limit, req.windowMs);
    if (next !== null && !dryRun) this.entries.set(key, { sw: next, expiresAt: (next.window + 2) * req.windowMs });
    return limitResult(decision.allowed, decision.remaining, decision.resetMs, decision.retryAtMs, now);
  }

  sweep(): void {
    const now = this.clock();
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
