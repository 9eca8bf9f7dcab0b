import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { KeyHasher, extractApiKey } from '../auth/apiKey';
import type { Authenticator } from '../auth/authenticator';
import type { BlockedIps } from '../auth/ipBlocks';
import type { StoredKey } from '../auth/keyStore';
import type { HeaderMode } from '../config/load';
import { isGatewayError, reply, type ErrorReply } from '../errors';
import type { HealthState } from '../health/healthState';
import type { InflightGuard } from '../health/inflightGuard';
import { shedRetryAfter } from '../health/shed';
import type { SignalRecorder } from '../health/signals';
import { retryAfterSeconds } from '../limit/algorithms';
import type { LimitDecision, Limiter } from '../limit/limiter';
import type { Logger } from '../observability/logger';
import type { Metrics, Outcome } from '../observability/metrics';
import type { UpstreamProxy } from '../proxy/upstreamProxy';
import { resolveClientIp, type TrustedProxies } from './clientIp';
import { rateLimitHeaders } from './rateLimitHeaders';
import { sendError, sendErrorOnSocket, type HeaderList } from '../errorResponse';

export interface PipelineDeps {
  readonly apiKeyHeader: string;
  readonly headerMode: HeaderMode;
  readonly draftHeaders: boolean;
  readonly trusted: TrustedProxies;
  readonly blocked: BlockedIps;
  readonly auth: Authenticator;
  readonly limiter: Limiter;
  readonly health: HealthState;
  /** The in-flight guard towards the upstream; null when CONCURRENCY_LIMIT=off. */
  readonly guard: InflightGuard | null;
  /** Upstream latency and failures, for the automatic health state. */
  readonly signals: SignalRecorder;
  readonly proxy: UpstreamProxy;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** True once shutdown began: responses then say `Connection: close`. */
  readonly draining: () => boolean;
  /** Counts a bad key from `ip`; resolves once a resulting block is in force locally. */
  readonly onInvalidKey: (ip: string) => Promise<void>;
}

/** Where a request stands after the stages: admitted (with its headers) or refused. */
type Verdict =
  | { readonly admitted: true; readonly tier: string; readonly shedFirst: boolean; readonly headers: HeaderList | null }
  | { readonly admitted: false; readonly tier: string; readonly outcome: Outcome; readonly error: ErrorReply; readonly headers: HeaderList | null };

const TIER = Symbol('tollgate.tier');
const STARTED = Symbol('tollgate.started');
/** Holds an in-flight guard slot: SHED_FIRST for the lowest priority's, OTHER for the rest. */
const SLOT = Symbol('tollgate.slot');
const SLOT_OTHER = 1;
const SLOT_SHED_FIRST = 2;
interface Tagged {
  [TIER]?: string;
  [STARTED]?: number;
  [SLOT]?: number;
}

const MISSING_KEY = reply('missing_api_key');
const INVALID_KEY = reply('invalid_api_key');
const KEY_EXPIRED = reply('key_expired');

type Refusal = Extract<Verdict, { admitted: false }>;

function refuse(tier: string, outcome: Outcome, error: ErrorReply, headers: HeaderList | null = null): Refusal {
  return { admitted: false, tier, outcome, error, headers };
}

/**
 * The request path, in this fixed order, with an early exit after each stage:
 *   1. client IP   2. blocked?   3. API key   4. key → tier   5. limit decision
 *   6. proxy (rate-limit headers set, X-Tollgate-Tier added)
 */
export function createPipeline(deps: PipelineDeps) {
  const { metrics, log } = deps;
  const hasher = new KeyHasher();

  async function invalidKey(ip: string): Promise<Verdict> {
    try {
      await deps.onInvalidKey(ip);
    } catch (err) {
      log.warn({ err }, 'could not count an invalid key');
    }
    return refuse('none', 'unauthorized', INVALID_KEY);
  }

  /**
   * Stages 1–5. Synchronous wherever the answer is already in process (cached key, held
   * denial, blocked IP): only a store call makes it a promise. Each promise hop on the
   * request path costs an allocation and a microtask turn.
   */
  function admit(req: IncomingMessage): Verdict | Promise<Verdict> {
    // 1. Client IP
    const ip = resolveClientIp(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], deps.trusted);
    // 2. Blocked?
    const blockedMs = deps.blocked.remainingMs(ip);
    if (blockedMs > 0) {
      const retryAfter = Math.ceil(blockedMs / 1000);
      return refuse('none', 'blocked', reply('ip_blocked', { retryAfter }), [['Retry-After', String(retryAfter)]]);
    }
    // 3. API key
    const extracted = extractApiKey(req.headers[deps.apiKeyHeader]);
    if (extracted.kind === 'missing') return refuse('none', 'unauthorized', MISSING_KEY);
    if (extracted.kind === 'malformed') return invalidKey(ip);
    // 4. Key → tier
    const hash = hasher.hash(extracted.key);
    const key = deps.auth.cached(hash);
    if (key === undefined) return deps.auth.resolve(hash).then((resolved) => limit(ip, resolved, hash));
    return limit(ip, key, hash);
  }

  function limit(ip: string, key: StoredKey | null, hash: string): Verdict | Promise<Verdict> {
    if (key === null || key.disabled) return invalidKey(ip);
    // Found through the previous key of a rotation: it works until its grace ends (SPEC §9).
    if (key.hash !== hash && !(key.previousKeyUntil !== undefined && Date.now() < Date.parse(key.previousKeyUntil))) return invalidKey(ip);
    // An expired key is a known key: 401 key_expired, not counted towards blocking the IP.
    if (key.expiresAt !== undefined && Date.now() >= Date.parse(key.expiresAt)) return refuse('none', 'unauthorized', KEY_EXPIRED);
    const planned = deps.limiter.request(key, deps.health.status, 1, deps.health.ramp);
    if (planned === null) {
      log.error({ keyId: key.id, tier: key.tier }, 'key names a tier that is not in force');
      return invalidKey(ip);
    }
    // Nothing is allowed in this state: shed without asking the store (SPEC §8).
    if (planned.plan.template.counters[0].limit === 0) return overloaded(key.tier);
    // 5. Limit decision
    const t0 = performance.now();
    const held = deps.limiter.heldDenial(planned);
    if (held !== null) return decided(held, t0);
    return deps.limiter.decide(planned).then((decision) => decided(decision, t0));
  }

  function decided(decision: LimitDecision, t0: number): Verdict {
    metrics.limiterDuration.observe((performance.now() - t0) / 1000);
    const mode = deps.headerMode;
    const tier = decision.tier.name;
    const { plan, result } = decision;
    if (!result.allowed) return limited(decision);
    const headers = mode === 'gateway' ? rateLimitHeaders(plan, result, deps.draftHeaders) : null;
    return { admitted: true, tier, shedFirst: deps.limiter.shedFirst(decision.tier), headers };
  }

  function overloaded(tier: string): Refusal {
    const retryAfter = shedRetryAfter(Math.random());
    return refuse(tier, 'overloaded', reply('overloaded', { retryAfter }), [['Retry-After', String(retryAfter)]]);
  }

  /** The upstream request ended one way or another: give its guard slot back. */
  function release(req: IncomingMessage): void {
    const slot = (req as Tagged)[SLOT];
    if (slot === undefined || deps.guard === null) return;
    (req as Tagged)[SLOT] = undefined;
    deps.guard.release(slot === SLOT_SHED_FIRST);
  }

  /** 429: `quota_exceeded` when the quota binds, else `rate_limited` (SPEC §9). */
  function limited({ tier: { name: tier }, plan, result }: LimitDecision): Verdict {
    const counter = plan.template.counters[result.binding];
    metrics.refused(tier, counter.kind);
    const retryAfter = retryAfterSeconds(result.retryAtMs, result.nowMs);
    const error = counter.kind === 'quota'
      ? reply('quota_exceeded', { tier, limit: counter.limit, period: counter.spec, retryAfter })
      : reply('rate_limited', { tier, limit: counter.limit, retryAfter });
    return refuse(tier, 'limited', error, deps.headerMode === 'none' ? [['Retry-After', String(retryAfter)]] : rateLimitHeaders(plan, result, deps.draftHeaders));
  }

  /** Runs `admit`, then `then` with its verdict — at once when there was nothing to wait for. */
  function withVerdict(req: IncomingMessage, then: (verdict: Verdict) => void): void {
    let verdict: Verdict | Promise<Verdict>;
    try {
      verdict = admit(req);
    } catch (err) {
      verdict = failure(err);
    }
    if (verdict instanceof Promise) verdict.then(then, (err: unknown) => then(failure(err)));
    else then(verdict);
  }

  function settle(req: IncomingMessage, verdict: Verdict): void {
    if (verdict.admitted) {
      (req as Tagged)[TIER] = verdict.tier;
    } else {
      metrics.outcomes(verdict.tier)[verdict.outcome].inc();
    }
  }

  function failure(err: unknown): Verdict {
    if (isGatewayError(err)) return refuse('none', err.code === 'store_unavailable' ? 'unavailable' : 'unauthorized', err);
    log.error({ err }, 'request pipeline failed');
    return refuse('none', 'unavailable', reply('internal_error'));
  }

  function observeEnd(req: IncomingMessage): void {
    const started = (req as Tagged)[STARTED];
    if (started !== undefined) metrics.requestDuration.observe((performance.now() - started) / 1000);
  }

  return {
    handleRequest(req: IncomingMessage, res: ServerResponse): void {
      const started = performance.now();
      // A client must not reuse a socket we are about to close (proxied responses: see
      // upstreamProxy). h2 forbids the header; its sessions drain by GOAWAY (proxyServer).
      if (deps.draining() && req.httpVersionMajor === 1) res.setHeader('connection', 'close');
      withVerdict(req, (verdict) => {
        try {
          settle(req, verdict);
          if (!verdict.admitted) {
            sendError(res, verdict.error, verdict.headers ?? undefined);
            metrics.requestDuration.observe((performance.now() - started) / 1000);
            return;
          }
          const guard = deps.guard;
          if (guard !== null) {
            // Refused at once, never queued: the lowest priority may hold only half the slots.
            if (!guard.tryAcquire(verdict.shedFirst)) {
              const shed = overloaded(verdict.tier);
              settle(req, shed);
              sendError(res, shed.error, shed.headers ?? undefined);
              metrics.requestDuration.observe((performance.now() - started) / 1000);
              return;
            }
            (req as Tagged)[SLOT] = verdict.shedFirst ? SLOT_SHED_FIRST : SLOT_OTHER;
          }
          (req as Tagged)[STARTED] = started;
          deps.proxy.web(req, res, verdict.tier, verdict.headers);
        } catch (err) {
          // Nothing may throw out of here: this can run in a promise callback, and an
          // unhandled rejection would end the process.
          try {
            log.error({ err }, 'request failed after admission');
            sendError(res, reply('internal_error'));
          } catch {
            res.destroy();
          }
        }
      });
    },

    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      socket.on('error', () => socket.destroy());
      withVerdict(req, (verdict) => {
        try {
          settle(req, verdict);
          if (!verdict.admitted) {
            sendErrorOnSocket(socket, verdict.error, verdict.headers ?? undefined);
            return;
          }
          metrics.outcomes(verdict.tier).allowed.inc();
          deps.proxy.ws(req, socket, head, verdict.tier);
        } catch (err) {
          log.error({ err }, 'upgrade failed after admission');
          socket.destroy();
        }
      });
    },

    /** The proxied response is complete. */
    onUpstreamEnd(req: IncomingMessage): void {
      release(req);
      observeEnd(req);
    },

    /** The client left before the response ended; the upstream request was cancelled. */
    onUpstreamCancelled(req: IncomingMessage): void {
      release(req);
    },

    /** The upstream answered: the request counts as allowed. */
    onUpstreamHead(req: IncomingMessage, seconds: number, status: number): void {
      deps.signals.response(seconds, status);
      metrics.upstreamDuration.observe(seconds);
      metrics.outcomes((req as Tagged)[TIER] ?? 'none').allowed.inc();
    },

    /** `headers`: the rate-limit headers the response would have had, also on the error. */
    onUpstreamError(req: IncomingMessage, where: ServerResponse | Duplex, error: ErrorReply, err: Error, headers: HeaderList | null): void {
      const tier = (req as Tagged)[TIER] ?? 'none';
      release(req);
      observeEnd(req);
      // Refused, reset or timed out: each is overload-class (SPEC §8), unlike a plain 500 answer.
      if ((req as Tagged)[STARTED] !== undefined) deps.signals.failure(true);
      log.warn({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code }, status: error.status }, 'upstream failed');
      if ('setHeader' in where) {
        if (!where.headersSent) metrics.outcomes(tier).upstream_error.inc();
        sendError(where, error, headers ?? undefined);
      } else {
        where.destroy();
      }
    },
  };
}
