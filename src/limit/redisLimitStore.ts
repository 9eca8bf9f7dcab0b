import type { Cluster, Redis } from 'ioredis';
import { CoalescedWrites } from './coalescedWrites';
import { planResult, type Counter, type Plan, type PlanResult, type PlanTemplate } from './plan';
import { GCRA_LUA, PLAN_LUA, QUOTA_CHANGE_LUA, SLIDING_WINDOW_LUA } from './redisScripts';
import type { LimitStore, QuotaChange, QuotaUsage } from './store';

type Arg = string | number;
type Single = (key: string, limit: number, windowMs: number, peek: string, cost: number, offset: number) => Promise<[number, number, number, number, number]>;
interface ScriptCommands {
  tollgateSlidingWindow: Single;
  tollgateGcra: Single;
  tollgatePlan(numKeys: number, ...args: Arg[]): Promise<number[]>;
  tollgateQuotaChange(key: string, mode: string, n: number, offset: number, spec: string, anchor: number, limit: number, ...fields: string[]): Promise<number[]>;
}

/** Registers the limiter scripts once per client; ioredis loads them on every node on NOSCRIPT. */
function withScripts(client: Redis | Cluster): ScriptCommands {
  const c = client as (Redis | Cluster) & Partial<ScriptCommands>;
  // numberOfKeys omitted: a plan has as many keys as counters, given as the first argument.
  if (!c.tollgatePlan) c.defineCommand('tollgatePlan', { lua: PLAN_LUA });
  if (!c.tollgateSlidingWindow) c.defineCommand('tollgateSlidingWindow', { numberOfKeys: 1, lua: SLIDING_WINDOW_LUA });
  if (!c.tollgateGcra) c.defineCommand('tollgateGcra', { numberOfKeys: 1, lua: GCRA_LUA });
  if (!c.tollgateQuotaChange) c.defineCommand('tollgateQuotaChange', { numberOfKeys: 1, lua: QUOTA_CHANGE_LUA });
  return c as unknown as ScriptCommands;
}

/**
 * The subject's one hash of counters (PLAN_LUA): the sliding-window main counter's key, so its
 * fields are the fast path's; with GCRA it holds every counter but the main TAT. One name
 * for both algorithms, so a quota's count survives a tier's change of algorithm.
 */
const PLAN_HASH = 'sw';

/**
 * A counter's fields in the plan hash (PLAN_LUA reads them in this order): sliding window
 * w/c/p (window index, current, previous; the main window's unprefixed, the fast path's),
 * quota p/c/a (period id, used, added), GCRA t (its TAT; none for the main one, whose TAT is
 * the fast path's string key).
 */
function counterFields(c: Counter, main: boolean): string[] {
  const f = c.key === PLAN_HASH ? '' : `${c.key}.`;
  if (c.spec === 'sw') return [`${f}w`, `${f}c`, `${f}p`];
  if (c.spec === 'gcra') return main ? [] : [`${f}t`];
  return [`${f}p`, `${f}c`, `${f}a`];
}

export interface RedisLimitStoreOptions {
  /**
   * Added to Redis `TIME` inside the scripts. Tests only (quota rollovers at chosen
   * instants without waiting); no setting reaches it, so production always passes 0.
   */
  readonly clockOffsetMs?: number;
}

/**
 * One EVALSHA per decision, whatever the number of counters: a plan of one rate counter
 * through SLIDING_WINDOW_LUA / GCRA_LUA, any other through PLAN_LUA, which keeps every counter
 * in one hash (one HMGET, one HSET). All keys of one subject (key id or identity) share the
 * hash tag `{subject}`, so a script never crosses Redis Cluster slots.
 */
export class RedisLimitStore implements LimitStore {
  private readonly scripts: ScriptCommands;
  private readonly writes: CoalescedWrites;
  private readonly offset: number;
  /** Per template: the key suffixes and the counters' ARGV string, made once (no per-request formatting). */
  private readonly compiled = new WeakMap<PlanTemplate, { suffixes: readonly string[]; argv: string }>();

  constructor(client: Redis | Cluster, private readonly prefix: string, options: RedisLimitStoreOptions = {}) {
    this.scripts = withScripts(client);
    this.writes = new CoalescedWrites(client);
    this.offset = options.clockOffsetMs ?? 0;
  }

  decide(plan: Plan): Promise<PlanResult> {
    return this.run(plan, '0');
  }

  peek(plan: Plan): Promise<PlanResult> {
    return this.run(plan, '1');
  }

  async changeQuota(plan: Plan, change: QuotaChange | null): Promise<QuotaUsage> {
    const c = plan.template.counters[plan.template.quotaIndex];
    const key = `${this.prefix}{${plan.subject}}:${PLAN_HASH}`;
    const [mode, n] = change === null ? ['get', 0] : 'reset' in change ? ['reset', 0] : ['add', change.add];
    const r = await this.scripts.tollgateQuotaChange(key, mode, n, this.offset, c.spec, c.anchor, c.limit, ...counterFields(c, false));
    return { limit: r[0], used: r[1], remaining: r[2], resetMs: r[3] };
  }

  private async run(plan: Plan, peek: string): Promise<PlanResult> {
    this.writes.hold();
    const { counters } = plan.template;
    if (counters.length === 1 && counters[0].windowMs > 0) {
      // One rate counter (a plain tier): the single-counter script, as cheap as before SPEC §9.
      const c = counters[0];
      const key = `${this.prefix}{${plan.subject}}:${c.key}`;
      const r = c.spec === 'gcra'
        ? await this.scripts.tollgateGcra(key, c.limit, c.windowMs, peek, plan.cost, this.offset)
        : await this.scripts.tollgateSlidingWindow(key, c.limit, c.windowMs, peek, plan.cost, this.offset);
      return planResult(r[0] === 1, r[3], r[4], 0, [r[1], r[2]]);
    }
    const { suffixes, argv } = this.compile(plan.template);
    const n = suffixes.length;
    const args: Arg[] = new Array(1 + n + 4);
    args[0] = n;
    const tag = `${this.prefix}{${plan.subject}}:`;
    for (let i = 0; i < n; i++) args[1 + i] = tag + suffixes[i];
    let a = 1 + n;
    args[a++] = peek;
    args[a++] = plan.cost;
    args[a++] = this.offset;
    args[a] = argv;
    const r = await this.scripts.tollgatePlan(...(args as [number, ...Arg[]]));
    return planResult(r[0] === 1, r[3], r[1], r[2], r.slice(4));
  }

  private compile(template: PlanTemplate): { suffixes: readonly string[]; argv: string } {
    let c = this.compiled.get(template);
    if (c === undefined) {
      const main = template.counters[0];
      const specs: string[] = [];
      const limits: number[] = [];
      const args: number[] = [];
      const starts: number[] = [];
      const fields: string[] = [];
      template.counters.forEach((k, i) => {
        specs.push(k.spec);
        limits.push(k.limit);
        args.push(k.windowMs === 0 ? k.anchor : k.windowMs);
        starts.push(fields.length);
        fields.push(...counterFields(k, i === 0));
      });
      const argv = JSON.stringify([specs, limits, args, starts, fields]);
      // GCRA's main TAT stays the fast path's string key; every other counter is in the hash.
      c = { suffixes: main.spec === 'gcra' ? [main.key, PLAN_HASH] : [PLAN_HASH], argv };
      this.compiled.set(template, c);
    }
    return c;
  }
}
