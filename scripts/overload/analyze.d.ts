// Types for scripts/overload/analyze.js, so TypeScript tests can import it under `strict`.

export type State = 'NORMAL' | 'DEGRADED' | 'CRITICAL';

export interface Poll {
  /** seconds since the load started */
  t: number;
  status: State | null;
  automatic?: State | null;
}

export interface Transition {
  t: number;
  from: State;
  to: State;
  /** analyzeRun only: who made it (an operator's PUT shortly before it, or the gateway) */
  by?: 'operator' | 'gateway';
}

export interface Group {
  name: string;
  tier: string;
  keys: number;
  rate: number;
  contract: 'free' | 'within' | 'above';
}

export interface Bucket {
  sent: number;
  ok: number;
  limited: number;
  overloaded: number;
  timeout: number;
  upstreamError: number;
  otherStatus: number;
  error: number;
}

export interface GroupPhase extends Bucket {
  goodput: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface PhaseResult {
  from: number;
  to: number;
  withinContractGoodput: number | null;
  overloadRefusals: number;
  groups: Record<string, GroupPhase>;
}

export interface RunInput {
  groups: Group[];
  buckets: Record<string, Bucket[]>;
  latencies: Record<string, number[][]>;
  polls: Poll[];
  faults: Array<[number, number]>;
  phases: Array<{ name: string; from: number; to: number }>;
  dwell: number;
  seconds: number;
  upstream?: Array<{ t: number; queueMax: number }>;
  operator?: Array<{ t: number; status: State }>;
}

export interface RunResult {
  phases: Record<string, PhaseResult>;
  detectSeconds: number | null;
  recoverSeconds: number | null;
  recovered: boolean | null;
  transitions: Transition[];
  transitionCount: number;
  flaps: number;
  automatic: { detectSeconds: number | null; recoverSeconds: number | null; transitionCount: number; flaps: number };
  overloadRefusals: number;
  overloadRefusalsByGroup: Record<string, number>;
  shedPrecision: number | null;
  totals: Record<string, Bucket>;
  series: {
    state: Array<State | null>;
    automatic: Array<State | null>;
    goodput: Record<string, Array<number | null>>;
    overloaded: number[];
    limited: number[];
    upstreamQueueMax: Array<number | null>;
  };
}

export interface Target {
  name: string;
  value: number | null;
  met: boolean;
  note?: string;
}

export declare function targetsOf(scenario: string, result: RunResult): Target[];
export declare function analyzeRun(run: RunInput): RunResult;
export declare function attribute(transitions: Transition[], operator: Array<{ t: number; status: State }>): Transition[];
export declare function transitionsOf(polls: Poll[], field?: 'status' | 'automatic'): Transition[];
export declare function flapsOf(transitions: Transition[], dwell: number): number;
export declare function detectOf(polls: Poll[], faults: Array<[number, number]>, field?: 'status' | 'automatic'): number | null;
export declare function recoverOf(polls: Poll[], faults: Array<[number, number]>, field?: 'status' | 'automatic'): { seconds: number | null; recovered: boolean | null };
export declare function percentile(sorted: number[], q: number): number | null;
