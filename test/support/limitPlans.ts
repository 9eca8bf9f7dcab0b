import { makeTemplate, type Counter, type CounterSpec, type Plan, type PlanTemplate } from '../../src/limit/plan';
import type { LimitStore } from '../../src/limit/store';
import type { PlanResult } from '../../src/limit/plan';
import type { Algorithm } from '../../src/limit/tiers';

/** One rate counter, the shape of the pre-§9 limiter's request. */
export interface LimitRequest {
  readonly id: string;
  readonly algorithm: Algorithm;
  readonly limit: number;
  readonly windowMs: number;
}

const templates = new Map<string, PlanTemplate>();

/** A plan of the main window alone (templates shared, as the limiter shares them). */
export function singlePlan(req: LimitRequest, cost = 1): Plan {
  const spec: CounterSpec = req.algorithm === 'gcra' ? 'gcra' : 'sw';
  const k = `${spec}:${req.limit}:${req.windowMs}`;
  let template = templates.get(k);
  if (template === undefined) {
    template = makeTemplate([{ name: 't', kind: 'rate', key: spec, spec, limit: req.limit, windowMs: req.windowMs, anchor: 0 }]);
    templates.set(k, template);
  }
  return { subject: req.id, template, cost };
}

export interface SingleCounterStore {
  decide(req: LimitRequest): Promise<PlanResult>;
  peek(req: LimitRequest): Promise<PlanResult>;
}

export function singleCounterStore(store: LimitStore): SingleCounterStore {
  return { decide: (req) => store.decide(singlePlan(req)), peek: (req) => store.peek(singlePlan(req)) };
}

/** Counter builders for multi-counter plans in tests. */
export const counters = {
  rate(name: string, algorithm: Algorithm, limit: number, windowMs: number, kind: 'rate' | 'window' | 'route' = 'window'): Counter {
    const spec: CounterSpec = algorithm === 'gcra' ? 'gcra' : 'sw';
    return { name, kind, key: kind === 'rate' ? spec : `${spec}:${name}`, spec, limit, windowMs, anchor: 0 };
  },
  quota(name: string, limit: number, period: 'day' | 'month', anchor = period === 'month' ? 1 : 0): Counter {
    return { name, kind: 'quota', key: `q:${period}`, spec: period, limit, windowMs: 0, anchor };
  },
};

export function plan(subject: string, list: readonly Counter[], cost = 1): Plan {
  return { subject, template: makeTemplate(list), cost };
}
