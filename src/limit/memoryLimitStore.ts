import type { Clock } from '../clock';
import { gcra, quota, slidingWindow, type Decision, type QuotaState, type SlidingWindowState } from './algorithms';
import { DAY_MS, quotaPeriod, type QuotaPeriodName } from './calendar';
import { planResult, type Counter, type Plan, type PlanResult } from './plan';
import type { LimitStore, QuotaChange, QuotaUsage } from './store';

interface Entry {
  sw?: SlidingWindowState;
  tat?: number;
  quota?: QuotaState;
  /** Epoch ms after which the entry holds nothing that matters. */
  expiresAt: number;
}

interface Answer {
  decision: Decision;
  free: number;
  /** The counter's reset when nothing is counted (gcra: when the bucket is full as it stands). */
  standingResetMs: number;
  next: Entry | null;
}

/**
 * In-process store: the same arithmetic as the Redis script `PLAN_LUA`, state in a Map.
 * The clock is injected (`offsetMs` plays the part of the script's test-only offset).
 */
export class MemoryLimitStore implements LimitStore {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly clock: Clock, sweepIntervalMs = 10_000) {
    // Bounded memory with many keys: drop entries whose window, bucket or period has run out.
    this.sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweeper.unref();
  }

  decide(plan: Plan): Promise<PlanResult> {
    return Promise.resolve(this.decideSync(plan, false));
  }

  peek(plan: Plan): Promise<PlanResult> {
    return Promise.resolve(this.decideSync(plan, true));
  }

  /** Synchronous form, used directly by the breaker's `local` fallback. */
  decideSync(plan: Plan, dryRun: boolean): PlanResult {
    const now = this.clock();
    const { counters } = plan.template;
    const cost = plan.cost;
    const answers: Answer[] = new Array(counters.length);
    let allowed = true;
    let binding = 0;
    let retryAtMs = 0;
    for (let i = 0; i < counters.length; i++) {
      const a = this.answer(counters[i], `${plan.subject}:${counters[i].key}`, now, cost);
      answers[i] = a;
      if (!a.decision.allowed && (allowed || a.decision.retryAtMs > retryAtMs)) {
        binding = i;
        retryAtMs = a.decision.retryAtMs;
        allowed = false;
      }
    }
    const out: number[] = new Array(counters.length * 2);
    let fewest = Infinity;
    for (let i = 0; i < counters.length; i++) {
      const a = answers[i];
      out[2 * i] = allowed ? a.decision.remaining : a.free;
      out[2 * i + 1] = allowed ? a.decision.resetMs : a.standingResetMs;
      if (allowed && a.decision.remaining < fewest) {
        fewest = a.decision.remaining;
        binding = i;
      }
      if (allowed && !dryRun && a.next !== null) this.entries.set(`${plan.subject}:${counters[i].key}`, a.next);
    }
    return planResult(allowed, allowed ? 0 : retryAtMs, now, binding, out);
  }

  changeQuota(plan: Plan, change: QuotaChange | null): Promise<QuotaUsage> {
    const c = plan.template.counters[plan.template.quotaIndex];
    const now = this.clock();
    const key = `${plan.subject}:${c.key}`;
    const p = quotaPeriod(c.spec as QuotaPeriodName, c.anchor, now);
    const prev = this.entries.get(key)?.quota;
    const same = prev !== undefined && prev.period === p.id;
    const current: QuotaState = { period: p.id, used: same ? prev.used : 0, added: same ? prev.added : 0 };
    let state = current;
    if (change !== null) {
      state = 'reset' in change ? { period: p.id, used: 0, added: 0 } : { ...current, added: current.added + change.add };
      this.entries.set(key, { quota: state, expiresAt: p.endMs + DAY_MS });
    }
    const cap = c.limit + state.added;
    return Promise.resolve({ limit: cap, used: state.used, remaining: Math.max(0, cap - state.used), resetMs: p.endMs });
  }

  private answer(c: Counter, key: string, now: number, cost: number): Answer {
    const entry = this.entries.get(key);
    if (c.spec === 'gcra') {
      const tat = entry?.tat ?? null;
      const r = gcra(tat, now, c.limit, c.windowMs, cost);
      const standing = Math.ceil(tat === null || tat < now ? now : tat);
      return { decision: r.decision, free: r.free, standingResetMs: standing, next: r.nextTat === null ? null : { tat: r.nextTat, expiresAt: r.nextTat } };
    }
    if (c.spec === 'sw') {
      const r = slidingWindow(entry?.sw ?? null, now, c.limit, c.windowMs, cost);
      return { decision: r.decision, free: r.free, standingResetMs: r.decision.resetMs, next: r.next === null ? null : { sw: r.next, expiresAt: (r.next.window + 2) * c.windowMs } };
    }
    const r = quota(entry?.quota ?? null, now, c.limit, c.spec, c.anchor, cost);
    return { decision: r.decision, free: r.free, standingResetMs: r.endMs, next: r.next === null ? null : { quota: r.next, expiresAt: r.endMs + DAY_MS } };
  }

  sweep(): void {
    const now = this.clock();
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
