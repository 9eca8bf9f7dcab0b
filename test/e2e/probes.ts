import { performance } from 'node:perf_hooks';
import type { GatewayProcess } from '../support/gateway';
import { httpRequest } from '../support/http';
import { sleep, waitFor } from '../support/processes';

/* What an operator reads off a running gateway: metric values, audit lines, paced load. */

/** The value of one sample on /metrics, e.g. metricValue(gw, 'tollgate_store_breaker_state{state="open"}'); undefined if absent. */
export async function metricValue(gw: GatewayProcess, sample: string): Promise<number | undefined> {
  const r = await httpRequest(`${gw.adminUrl}/metrics`, { timeoutMs: 2000 });
  if (r.status !== 200) throw new Error(`GET /metrics → ${r.status}`);
  for (const line of r.body.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

export async function breakerState(gw: GatewayProcess): Promise<string> {
  for (const state of ['closed', 'open', 'half_open']) {
    if ((await metricValue(gw, `tollgate_store_breaker_state{state="${state}"}`)) === 1) return state;
  }
  throw new Error('no tollgate_store_breaker_state sample is 1');
}

/** Audit lines (JSON, "audit":true) with this event, in the gateway's output so far. */
export function auditLines(gw: GatewayProcess, event: string): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const line of gw.output().split('\n')) {
    if (!line.includes(`"event":"${event}"`)) continue;
    const parsed = JSON.parse(line) as Record<string, unknown>;
    if (parsed.audit === true && parsed.event === event) lines.push(parsed);
  }
  return lines;
}

/** Resolves with the ms it took until every gateway's audit log holds `event` `count` times. */
export async function waitForAudit(gws: readonly GatewayProcess[], event: string, timeoutMs: number, count = 1): Promise<number> {
  const started = Date.now();
  await waitFor(`${event} audit line ×${count} on ${gws.length} gateway(s)`, async () => gws.every((gw) => auditLines(gw, event).length >= count), timeoutMs, 20);
  return Date.now() - started;
}

export interface Sample {
  readonly i: number;
  readonly status: number;
  readonly ms: number;
  readonly error: string | null;
  readonly body: string;
  readonly remaining: string | undefined;
}

export interface LoadOptions {
  readonly targets: readonly string[];
  readonly keys: readonly string[];
  readonly ratePerSec: number;
  readonly durationMs: number;
  readonly timeoutMs?: number;
}

/**
 * Open-loop paced load: request i is sent at start + i / rate whatever the earlier ones
 * are doing (a closed loop would slow down with the gateway and hide its latency),
 * round-robin over targets and keys. Bounded: rate × duration requests, each with a timeout.
 */
export async function pacedLoad(opts: LoadOptions): Promise<Sample[]> {
  const total = Math.round((opts.ratePerSec * opts.durationMs) / 1000);
  const intervalMs = 1000 / opts.ratePerSec;
  const started = performance.now();
  const pending: Array<Promise<Sample>> = [];
  for (let i = 0; i < total; i++) {
    const wait = started + i * intervalMs - performance.now();
    if (wait > 1) await sleep(wait);
    const url = `${opts.targets[i % opts.targets.length]}/load/${i}`;
    const key = opts.keys[Math.floor(i / opts.targets.length) % opts.keys.length];
    const t0 = performance.now();
    pending.push(
      httpRequest(url, { headers: { 'x-api-key': key }, timeoutMs: opts.timeoutMs ?? 3000 }).then(
        (r) => ({ i, status: r.status, ms: performance.now() - t0, error: null, body: r.status >= 500 ? r.body : '', remaining: r.headers['x-ratelimit-remaining'] as string | undefined }),
        (e: Error) => ({ i, status: 0, ms: performance.now() - t0, error: e.message, body: '', remaining: undefined }),
      ),
    );
  }
  return Promise.all(pending);
}

export function summarize(samples: readonly Sample[]): { statuses: Record<number, number>; maxMs: number; p99Ms: number; errors: string[] } {
  const statuses: Record<number, number> = {};
  for (const s of samples) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
  return {
    statuses,
    maxMs: Math.round(sorted.at(-1) ?? 0),
    p99Ms: Math.round(sorted[Math.floor(sorted.length * 0.99)] ?? 0),
    errors: [...new Set(samples.filter((s) => s.error !== null).map((s) => s.error as string))].slice(0, 5),
  };
}
