import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { BucketHistogram } from './bucketHistogram';
import { HEALTH_STATUSES, type HealthStatus } from '../limit/policy';

export type Outcome = 'allowed' | 'limited' | 'unauthorized' | 'blocked' | 'upstream_error' | 'unavailable' | 'overloaded';
export type BreakerState = 'closed' | 'open' | 'half_open';
/** The files tollgate reloads at run time (SPEC §12). */
export type ConfigFile = 'tiers' | 'routes' | 'tls';

const OUTCOMES: readonly Outcome[] = ['allowed', 'limited', 'unauthorized', 'blocked', 'upstream_error', 'unavailable', 'overloaded'];
const BREAKER_STATES: readonly BreakerState[] = ['closed', 'open', 'half_open'];
const CONFIG_FILES: readonly ConfigFile[] = ['tiers', 'routes', 'tls'];

/** Fine enough for sub-millisecond decisions: from 50 µs up. */
const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const REQUEST_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Requests counted on the hot path as a plain increment; the counts reach prom-client's
 * counter when /metrics is read. (A labelled prom-client `inc` hashes its labels to a
 * string and looks that up on every call: measured as the costliest metric call per request.)
 */
class PendingCount {
  n = 0;
  constructor(readonly labels: { readonly tier: string; readonly outcome: Outcome }) {}
  inc(): void {
    this.n += 1;
  }
}

export interface HealthReadings {
  readonly inflight: number;
  /** The in-flight guard's limit; 0 when off. */
  readonly limit: number;
  /** The automatic state; null in manual mode. */
  readonly automatic: HealthStatus | null;
}

/** A request counter per outcome, made once per tier and then kept. */
export type OutcomeCounters = Readonly<Record<Outcome, { inc(): void }>>;

/**
 * Every metric lives in a private Registry: prom-client's global one throws on
 * re-registration when tests build the app twice. Labels are tier, outcome and
 * state only — never a key, an IP or a path.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requestDuration: BucketHistogram;
  readonly limiterDuration: BucketHistogram;
  readonly upstreamDuration: BucketHistogram;
  private readonly health: Gauge<'state'>;
  readonly healthTransitions: Counter<'from' | 'to' | 'cause'>;
  /** Read at scrape time: requests in flight to the upstream, and the guard's limit (0 when off). */
  private healthSource: () => HealthReadings = () => ({ inflight: 0, limit: 0, automatic: null });
  private readonly breaker: Gauge<'state'>;
  readonly storeFallback: Counter;
  readonly blockedIps: Gauge;
  private readonly configReloads: Counter<'file' | 'result'>;
  private readonly configLastReloadOk: Gauge<'file'>;
  private readonly shadowRefusals: Counter<'tier' | 'policy'>;
  private readonly byTier = new Map<string, OutcomeCounters>();
  private readonly pending: PendingCount[] = [];
  /** SPEC §9: refusals by tier and the kind of counter that refused; never a key. */
  readonly limitRefusals: Counter<'tier' | 'counter'>;

  constructor(opts: { defaultMetrics: boolean }) {
    const registers = [this.registry];
    const pending = this.pending;
    // Registers itself; its values come only from `collect`.
    new Counter({
      name: 'tollgate_requests_total', help: 'Requests through the proxy port by tier and outcome.', labelNames: ['tier', 'outcome'], registers,
      collect() {
        for (const p of pending) {
          if (p.n === 0) continue;
          this.inc(p.labels, p.n);
          p.n = 0;
        }
      },
    });
    this.requestDuration = new BucketHistogram('tollgate_request_duration_seconds', 'Whole request time on the proxy port, first byte in to last byte out.', REQUEST_BUCKETS, this.registry);
    this.limiterDuration = new BucketHistogram('tollgate_limiter_duration_seconds', 'Time of the rate-limit decision alone.', FAST_BUCKETS, this.registry);
    this.upstreamDuration = new BucketHistogram('tollgate_upstream_duration_seconds', 'Time from sending to the upstream until its response head arrived.', REQUEST_BUCKETS, this.registry);
    // Gauges that are per-cluster facts rather than per-worker sums aggregate with max.
    this.health = new Gauge({ name: 'tollgate_health_state', help: 'Health state in force: 1 for the current state, 0 otherwise.', labelNames: ['state'], registers, aggregator: 'max' });
    new Gauge({
      name: 'tollgate_health_automatic_state', help: 'The state the signals call for (HEALTH_MODE auto or shadow): 1 for that state, 0 otherwise; all 0 in manual mode.',
      labelNames: ['state'], registers, aggregator: 'max',
      collect() {
        const automatic = source().automatic;
        for (const s of HEALTH_STATUSES) this.set({ state: s }, s === automatic ? 1 : 0);
      },
    });
    this.healthTransitions = new Counter({ name: 'tollgate_health_transitions_total', help: 'Changes of the health state in force, by cause: auto, override, expiry.', labelNames: ['from', 'to', 'cause'], registers });
    const source = () => this.healthSource();
    new Gauge({ name: 'tollgate_upstream_inflight', help: 'Requests in flight to the upstream that hold an in-flight guard slot (0 when CONCURRENCY_LIMIT=off).', registers, collect() { this.set(source().inflight); } });
    new Gauge({ name: 'tollgate_concurrency_limit', help: 'The in-flight guard\'s limit per instance (0 when CONCURRENCY_LIMIT=off).', registers, aggregator: 'max', collect() { this.set(source().limit); } });
    this.breaker = new Gauge({ name: 'tollgate_store_breaker_state', help: 'Store circuit breaker: 1 for the current state, 0 otherwise.', labelNames: ['state'], registers, aggregator: 'max' });
    this.storeFallback = new Counter({ name: 'tollgate_store_fallback_total', help: 'Decisions made by STORE_FAILURE_MODE because the store was unusable.', registers });
    this.blockedIps = new Gauge({ name: 'tollgate_blocked_ips', help: 'Client IPs blocked for sending invalid API keys.', registers, aggregator: 'max' });
    this.limitRefusals = new Counter({
      name: 'tollgate_limit_refusals_total',
      help: 'Requests refused by a limit, by tier and by the kind of counter that refused (rate = the main window, window = an extra window, quota, route).',
      labelNames: ['tier', 'counter'], registers,
    });
    this.configReloads = new Counter({ name: 'tollgate_config_reloads_total', help: 'Reloads of a config file (tiers, routes, tls) by result (ok, rejected).', labelNames: ['file', 'result'], registers });
    // min across workers (WORKERS > 1): the fleet's file is "not ok" as soon as one worker
    // rejected it, which is what TollgateConfigRejected must see; max would hide that worker.
    this.configLastReloadOk = new Gauge({ name: 'tollgate_config_last_reload_ok', help: 'Whether the last reload of a config file succeeded (1) or was rejected (0); 1 before any reload.', labelNames: ['file'], registers, aggregator: 'min' });
    // Series exist from the start (the file loaded at start-up is in force), so alerts and
    // dashboards see them before the first reload.
    for (const file of CONFIG_FILES) {
      this.configReloads.inc({ file, result: 'ok' }, 0);
      this.configReloads.inc({ file, result: 'rejected' }, 0);
      this.configLastReloadOk.set({ file }, 1);
    }
    // SPEC §10: requests the limits would have refused, proxied because their mode is shadow.
    // `policy` is the kind of counter that refused (rate, window, quota, route): bounded.
    this.shadowRefusals = new Counter({ name: 'tollgate_shadow_refusals_total', help: 'Requests the limits would have refused, proxied anyway in shadow mode, by tier and the policy that refused.', labelNames: ['tier', 'policy'], registers });
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.setHealth('NORMAL');
    this.setBreaker('closed');
    this.outcomes('none');
  }

  /** Counter children for one tier, created once. */
  outcomes(tier: string): OutcomeCounters {
    let c = this.byTier.get(tier);
    if (c === undefined) {
      const entries = OUTCOMES.map((outcome) => {
        const count = new PendingCount({ tier, outcome });
        this.pending.push(count);
        return [outcome, count] as const;
      });
      c = Object.fromEntries(entries) as unknown as OutcomeCounters;
      this.byTier.set(tier, c);
    }
    return c;
  }

  private readonly refusalChildren = new Map<string, { inc(): void }>();

  /** Counts a refusal by `kind` of counter; the labelled child is made once per pair. */
  refused(tier: string, kind: string): void {
    const k = `${tier}\u0000${kind}`;
    let c = this.refusalChildren.get(k);
    if (c === undefined) {
      c = this.limitRefusals.labels(tier, kind);
      this.refusalChildren.set(k, c);
    }
    c.inc();
  }

  setHealth(status: HealthStatus): void {
    for (const s of HEALTH_STATUSES) this.health.set({ state: s }, s === status ? 1 : 0);
  }

  /** What the health gauges read at scrape time. */
  watchHealth(source: () => HealthReadings): void {
    this.healthSource = source;
  }

  setBreaker(state: BreakerState): void {
    for (const s of BREAKER_STATES) this.breaker.set({ state: s }, s === state ? 1 : 0);
  }

  /** Shadow mode let through a request `policy` would have refused (rare: a labelled inc is fine). */
  shadowRefusal(tier: string, policy: string): void {
    this.shadowRefusals.inc({ tier, policy });
  }

  /** One reload of `file` was attempted: it is now in force (`ok`) or was rejected. */
  configReload(file: ConfigFile, ok: boolean): void {
    this.configReloads.inc({ file, result: ok ? 'ok' : 'rejected' });
    this.configLastReloadOk.set({ file }, ok ? 1 : 0);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * Worker processes (WORKERS > 1): answer the primary's requests for this registry over
 * the cluster IPC channel (prom-client's AggregatorRegistry protocol).
 */
export function reportToPrimary(metrics: Metrics): void {
  AggregatorRegistry.setRegistries([metrics.registry]);
  // Constructing one installs the worker's message listener.
  new AggregatorRegistry();
}

/** The primary's /metrics: every worker's metrics, counters summed, state gauges by max. */
export function clusterMetricsSource(): () => Promise<{ contentType: string; body: string }> {
  const aggregator = new AggregatorRegistry();
  return async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() });
}
