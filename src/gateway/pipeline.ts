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
import type { LimitDecision, Limiter, PlannedRequest } from '../limit/limiter';
import type { Logger } from '../observability/logger';
import type { Metrics, Outcome } from '../observability/metrics';
import type { Forward, UpstreamProxy } from '../proxy/upstreamProxy';
import type { RouteMatcher } from '../routes/matcher';
import type { LimitMode } from '../routes/routes';
import type { AccessLog } from './accessLog';
import { resolveClientIp, type TrustedProxies } from './clientIp';
import { rateLimitHeaders } from './rateLimitHeaders';
import { RequestContext } from './requestContext';
import { RequestIds } from './requestId';
import { ANONYMOUS_TIER, anonymousSubject, limitModeOf, tierGate } from './routeStage';
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
  /** The routes in force (SPEC §10); `matcher` is swapped whole on reload. */
  readonly routes: { readonly matcher: RouteMatcher };
  /** LIMIT_MODE: a route's or tier's `mode` overrides it. */
  readonly limitMode: LimitMode;
  /** Null when ACCESS_LOG=false. */
  readonly accessLog: AccessLog | null;
}

/** Where a request stands after the stages: admitted (with its headers) or refused. */
type Verdict =
  | { readonly admitted: true; readonly tier: string; readonly shedFirst: boolean; readonly headers: HeaderList | null }
  | { readonly admitted: false; readonly tier: string; readonly outcome: Outcome; readonly error: ErrorReply; readonly headers: HeaderList | null };

const CONTEXT = Symbol('tollgate.context');
/** Holds an in-flight guard slot: SHED_FIRST for the lowest priority's, OTHER for the rest. */
const SLOT = Symbol('tollgate.slot');
const SLOT_OTHER = 1;
const SLOT_SHED_FIRST = 2;
interface Tagged {
  [CONTEXT]?: RequestContext;
  [SLOT]?: number;
}

function contextOf(req: IncomingMessage): RequestContext | undefined {
  return (req as Tagged)[CONTEXT];
}

const MISSING_KEY = reply('missing_api_key');
const INVALID_KEY = reply('invalid_api_key');
const KEY_EXPIRED = reply('key_expired');

type Refusal = Extract<Verdict, { admitted: false }>;

function refuse(tier: string, outcome: Outcome, error: ErrorReply, headers: HeaderList | null = null): Refusal {
  return { admitted: false, tier, outcome, error, headers };
}

function admitted(tier: string, shedFirst: boolean, headers: HeaderList | null): Verdict {
  return { admitted: true, tier, shedFirst, headers };
}

/**
 * A route with `auth: none`: no key, no limit, no rate-limit headers. Nobody is known to
 * have paid for it, so it is among the first shed by the in-flight guard.
 */
const ADMITTED_OPEN = admitted('none', true, null);

/**
 * The request path, in this fixed order, with an early exit after each stage:
 *   0. request id   1. client IP   2. blocked?   3. route (SPEC §10: `auth: none` → 7)
 *   4. API key (none on an `optional` route → tier anonymous, per client IP)
 *   5. key → tier, the route's `tiers`   6. limit decision (cost 0 → not counted;
 *   shadow → a refusal is counted and proxied)   7. proxy to the route's upstream
 *   (rate-limit headers set, X-Tollgate-Tier/-Key-Id/-Identity and X-Request-Id added)
 * and one access-log line when the response ends, however it ends.
 */
export function createPipeline(deps: PipelineDeps) {
  const { metrics, log } = deps;
  const hasher = new KeyHasher();
  const ids = new RequestIds();
  const accessLog = deps.accessLog;

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
  function admit(req: IncomingMessage, ctx: RequestContext): Verdict | Promise<Verdict> {
    // 1. Client IP
    const ip = resolveClientIp(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], deps.trusted);
    ctx.ip = ip;
    // 2. Blocked?
    const blockedMs = deps.blocked.remainingMs(ip);
    if (blockedMs > 0) {
      const retryAfter = Math.ceil(blockedMs / 1000);
      return refuse('none', 'blocked', reply('ip_blocked', { retryAfter }), [['Retry-After', String(retryAfter)]]);
    }
    // 3. Route: `auth: none` needs no key, and is neither limited nor counted.
    const route = deps.routes.matcher.match(req.method ?? 'GET', req.url ?? '/');
    ctx.route = route;
    if (route.auth === 'none') return ADMITTED_OPEN;
    // 4. API key
    const extracted = extractApiKey(req.headers[deps.apiKeyHeader]);
    if (extracted.kind === 'missing') return route.auth === 'optional' ? anonymous(ctx) : refuse('none', 'unauthorized', MISSING_KEY);
    if (extracted.kind === 'malformed') return invalidKey(ip);
    // 5. Key → tier
    const hash = hasher.hash(extracted.key);
    const key = deps.auth.cached(hash);
    if (key === undefined) return deps.auth.resolve(hash).then((resolved) => keyed(ctx, resolved, hash));
    return keyed(ctx, key, hash);
  }

  /** An `optional` route without a key: tier anonymous, counted per client IP, if tiers.json has it. */
  function anonymous(ctx: RequestContext): Verdict | Promise<Verdict> {
    const { route } = ctx;
    const planned = deps.limiter.requestAs(anonymousSubject(ctx.ip), ANONYMOUS_TIER, deps.health.status, route.cost || 1, deps.health.ramp, route.limits.get(ANONYMOUS_TIER) ?? null);
    if (planned === null) return refuse('none', 'unauthorized', MISSING_KEY);
    ctx.tier = ANONYMOUS_TIER;
    return limit(ctx, planned);
  }

  function keyed(ctx: RequestContext, key: StoredKey | null, hash: string): Verdict | Promise<Verdict> {
    if (key === null || key.disabled) return invalidKey(ctx.ip);
    // Found through the previous key of a rotation: it works until its grace ends (SPEC §9).
    if (key.hash !== hash && !(key.previousKeyUntil !== undefined && Date.now() < Date.parse(key.previousKeyUntil))) return invalidKey(ctx.ip);
    // An expired key is a known key: 401 key_expired, not counted towards blocking the IP.
    if (key.expiresAt !== undefined && Date.now() >= Date.parse(key.expiresAt)) return refuse('none', 'unauthorized', KEY_EXPIRED);
    ctx.keyId = key.id;
    ctx.identity = key.identity ?? null;
    const { route } = ctx;
    const refused = tierGate(route, key.tier);
    if (refused !== null) return refuse(key.tier, 'unauthorized', refused);
    const planned = deps.limiter.request(key, deps.health.status, route.cost || 1, deps.health.ramp, route.limits.get(key.tier) ?? null);
    if (planned === null) {
      log.error({ keyId: key.id, tier: key.tier }, 'key names a tier that is not in force');
      return invalidKey(ctx.ip);
    }
    ctx.tier = key.tier;
    return limit(ctx, planned);
  }

  /**
   * 6. Limit decision: every counter of the plan in one store call (or a held denial, none).
   * A tier allowed nothing in this health state is shed without asking the store (SPEC §8);
   * a route of cost 0 is authenticated but never counted, so it has no headers to tell.
   */
  function limit(ctx: RequestContext, planned: PlannedRequest): Verdict | Promise<Verdict> {
    if (planned.plan.template.counters[0].limit === 0) return overloaded(planned.tier.name);
    if (ctx.route.cost === 0) return admitted(planned.tier.name, deps.limiter.shedFirst(planned.tier), null);
    const shadow = limitModeOf(ctx.route, planned.tier.mode, deps.limitMode) === 'shadow';
    const t0 = performance.now();
    const held = deps.limiter.heldDenial(planned);
    if (held !== null) return decided(ctx, held, t0, shadow);
    return deps.limiter.decide(planned).then((decision) => decided(ctx, decision, t0, shadow));
  }

  function decided(ctx: RequestContext, decision: LimitDecision, t0: number, shadow: boolean): Verdict {
    metrics.limiterDuration.observe((performance.now() - t0) / 1000);
    const tier = decision.tier.name;
    const { plan, result } = decision;
    if (!result.allowed) return shadow ? shadowed(ctx, decision) : limited(decision);
    const headers = deps.headerMode === 'gateway' ? rateLimitHeaders(plan, result, deps.draftHeaders) : null;
    return admitted(tier, deps.limiter.shedFirst(decision.tier), headers);
  }

  /**
   * Shadow (SPEC §10): counted and logged as the refusal it would be (a refused request
   * counts in no counter, as in enforce), then proxied without rate-limit headers, which
   * would tell the client of a limit it is not held to.
   */
  function shadowed(ctx: RequestContext, { tier, plan, result }: LimitDecision): Verdict {
    const counter = plan.template.counters[result.binding];
    const policy = counter.kind;
    ctx.shadowRefused = policy;
    metrics.shadowRefusal(tier.name, policy);
    log.info({ keyId: ctx.keyId, tier: tier.name, policy, counter: counter.name, limit: counter.limit, route: ctx.route.name || null, requestId: ctx.id }, 'shadow mode: the limits would have refused this request');
    return admitted(tier.name, deps.limiter.shedFirst(tier), null);
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
  function withVerdict(req: IncomingMessage, ctx: RequestContext, then: (verdict: Verdict) => void): void {
    let verdict: Verdict | Promise<Verdict>;
    try {
      verdict = admit(req, ctx);
    } catch (err) {
      verdict = failure(err);
    }
    if (verdict instanceof Promise) verdict.then(then, (err: unknown) => then(failure(err)));
    else then(verdict);
  }

  function settle(ctx: RequestContext, verdict: Verdict): void {
    ctx.tier = verdict.tier;
    if (!verdict.admitted) {
      ctx.outcome = verdict.outcome;
      metrics.outcomes(verdict.tier)[verdict.outcome].inc();
    }
  }

  function forwardOf(ctx: RequestContext): Forward {
    return { tier: ctx.tier, upstream: ctx.route.upstream, requestId: ctx.id, keyId: ctx.keyId, identity: ctx.identity };
  }

  /** The response ended (or the client left): its duration and its access-log line. */
  function finish(req: IncomingMessage, ctx: RequestContext, status: number, outcome: string): void {
    if (ctx.logged) return;
    const durationMs = performance.now() - ctx.started;
    metrics.requestDuration.observe(durationMs / 1000);
    if (accessLog === null) ctx.logged = true;
    else accessLog.write(ctx, req.method ?? 'GET', req.url ?? '/', status, outcome, durationMs);
  }

  function failure(err: unknown): Verdict {
    if (isGatewayError(err)) return refuse('none', err.code === 'store_unavailable' ? 'unavailable' : 'unauthorized', err);
    log.error({ err }, 'request pipeline failed');
    return refuse('none', 'unavailable', reply('internal_error'));
  }


  return {
    handleRequest(req: IncomingMessage, res: ServerResponse): void {
      // 0. Request id: the client's when valid, else ours; on every response from here on.
      const ctx = new RequestContext(ids.of(req.headers['x-request-id']), performance.now());
      (req as Tagged)[CONTEXT] = ctx;
      // A client must not reuse a socket we are about to close (proxied responses: see
      // upstreamProxy). h2 forbids the header; its sessions drain by GOAWAY (proxyServer).
      if (deps.draining() && req.httpVersionMajor === 1) res.setHeader('connection', 'close');
      withVerdict(req, ctx, (verdict) => {
        try {
          settle(ctx, verdict);
          if (!verdict.admitted) {
            sendError(res, verdict.error, verdict.headers ?? undefined, ctx.id);
            finish(req, ctx, verdict.error.status, verdict.outcome);
            return;
          }
          const guard = deps.guard;
          if (guard !== null) {
            // Refused at once, never queued: the lowest priority may hold only half the slots.
            if (!guard.tryAcquire(verdict.shedFirst)) {
              const shed = overloaded(verdict.tier);
              settle(ctx, shed);
              sendError(res, shed.error, shed.headers ?? undefined, ctx.id);
              finish(req, ctx, shed.error.status, shed.outcome);
              return;
            }
            (req as Tagged)[SLOT] = verdict.shedFirst ? SLOT_SHED_FIRST : SLOT_OTHER;
          }
          ctx.proxied = true;
          const ours: HeaderList = verdict.headers === null ? [['X-Request-Id', ctx.id]] : verdict.headers;
          if (verdict.headers !== null) ours.push(['X-Request-Id', ctx.id]);
          deps.proxy.web(req, res, forwardOf(ctx), ours);
        } catch (err) {
          // Nothing may throw out of here: this can run in a promise callback, and an
          // unhandled rejection would end the process.
          try {
            log.error({ err }, 'request failed after admission');
            sendError(res, reply('internal_error'), undefined, ctx.id);
            finish(req, ctx, 500, 'unavailable');
          } catch {
            res.destroy();
          }
        }
      });
    },

    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      socket.on('error', () => socket.destroy());
      const ctx = new RequestContext(ids.of(req.headers['x-request-id']), performance.now());
      (req as Tagged)[CONTEXT] = ctx;
      withVerdict(req, ctx, (verdict) => {
        try {
          settle(ctx, verdict);
          if (!verdict.admitted) {
            sendErrorOnSocket(socket, verdict.error, verdict.headers ?? undefined, ctx.id);
            finish(req, ctx, verdict.error.status, verdict.outcome);
            return;
          }
          metrics.outcomes(verdict.tier).allowed.inc();
          // The line is written when the upgrade is handed on: the socket may stay open for hours.
          finish(req, ctx, 101, 'allowed');
          deps.proxy.ws(req, socket, head, forwardOf(ctx));
        } catch (err) {
          log.error({ err }, 'upgrade failed after admission');
          socket.destroy();
        }
      });
    },

    /** The proxied response is complete. */
    onUpstreamEnd(req: IncomingMessage, res: ServerResponse): void {
      release(req);
      const ctx = contextOf(req);
      if (ctx !== undefined) finish(req, ctx, res.statusCode, 'allowed');
    },

    /** The client left before the response ended; the upstream request was cancelled. */
    onUpstreamCancelled(req: IncomingMessage): void {
      release(req);
      const ctx = contextOf(req);
      // 499: nginx's status for a client that closed the connection first.
      if (ctx !== undefined) finish(req, ctx, 499, 'client_closed');
    },

    /** The upstream answered: the request counts as allowed. */
    onUpstreamHead(req: IncomingMessage, seconds: number, status: number): void {
      deps.signals.response(seconds, status);
      metrics.upstreamDuration.observe(seconds);
      const ctx = contextOf(req);
      if (ctx !== undefined) ctx.upstreamMs = seconds * 1000;
      metrics.outcomes(ctx?.tier ?? 'none').allowed.inc();
    },

    /** `headers`: the rate-limit headers the response would have had, also on the error. */
    onUpstreamError(req: IncomingMessage, where: ServerResponse | Duplex, error: ErrorReply, err: Error, headers: HeaderList | null): void {
      const ctx = contextOf(req);
      const tier = ctx?.tier ?? 'none';
      release(req);
      // Refused, reset or timed out: each is overload-class (SPEC §8), unlike a plain 500 answer.
      if (ctx?.proxied === true) deps.signals.failure(true);
      log.warn({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code }, status: error.status, requestId: ctx?.id }, 'upstream failed');
      if ('setHeader' in where) {
        const before = where.headersSent;
        if (!before) metrics.outcomes(tier).upstream_error.inc();
        // Ours, without the X-Request-Id that sendError adds with the body's requestId.
        const rest = headers === null || ctx === undefined ? headers : headers.filter((h) => h[0] !== 'X-Request-Id');
        sendError(where, error, rest ?? undefined, ctx?.id);
        if (ctx !== undefined) finish(req, ctx, before ? where.statusCode : error.status, 'upstream_error');
      } else {
        where.destroy();
      }
    },
  };
}
