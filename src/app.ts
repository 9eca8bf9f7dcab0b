import { readFile } from 'node:fs/promises';
import type { AddressInfo, Server } from 'node:net';
import type { Cluster, Redis } from 'ioredis';
import { createAdminServer } from './admin/server';
import { Authenticator } from './auth/authenticator';
import { BlockedIps, MemoryBlockStore, type BlockStore } from './auth/ipBlocks';
import { KeyCache } from './auth/keyCache';
import { KeyService } from './auth/keyService';
import type { KeyStore } from './auth/keyStore';
import { MemoryKeyStore } from './auth/memoryKeyStore';
import { RedisBlockStore } from './auth/redisBlockStore';
import { RedisKeyStore } from './auth/redisKeyStore';
import { API_KEY_FORMAT } from './auth/apiKey';
import { systemClock, type Clock } from './clock';
import type { Config } from './config/load';
import { GatewayError, reply } from './errors';
import { parseCidrList } from './gateway/clientIp';
import { createPipeline } from './gateway/pipeline';
import { createProxyListener } from './gateway/proxyServer';
import { readTlsPair, type TlsPair } from './gateway/tlsCredentials';
import { watchFiles } from './config/configFiles';
import { HealthController } from './health/controller';
import { HealthState, type HealthOverride } from './health/healthState';
import { healthView } from './health/healthView';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DenyCache } from './limit/denyCache';
import { Limiter } from './limit/limiter';
import { quotaBody, usageBody } from './limit/usage';
import { MemoryLimitStore } from './limit/memoryLimitStore';
import { RedisLimitStore } from './limit/redisLimitStore';
import type { LimitStore } from './limit/store';
import { StoreBreaker } from './limit/storeBreaker';
import { readTiersFile } from './limit/tiersFile';
import { tiersToJson, type TierParseResult, type TierSet } from './limit/tiers';
import { accessLogBatch, audit, flushLogs, type Logger } from './observability/logger';
import { AccessLog } from './gateway/accessLog';
import { Metrics } from './observability/metrics';
import { createUpstreamProxy } from './proxy/upstreamProxy';
import { createRedisClient } from './redisClient';
import { RouteTable } from './routes/routeTable';
import { routeUpstreams, routesMissingTiers, type RoutesParseResult } from './routes/routes';
import { MemoryControl, type Control, type ControlEvent } from './sync/control';
import { RedisControl } from './sync/redisControl';
import { LocalHealthFleet } from './sync/healthFleet';
import { RedisHealthFleet } from './sync/redisHealthFleet';

export interface AppOptions {
  /** `all`: both ports. With WORKERS > 1 the primary serves `admin` and each worker `proxy`. */
  readonly role?: 'all' | 'proxy' | 'admin';
  readonly clock?: Clock;
  /** Replaces /metrics output (the primary aggregates its workers' metrics). */
  readonly metricsOverride?: () => Promise<{ contentType: string; body: string }>;
  /** Also required for /readyz (the primary waits for its workers to listen). */
  readonly readyCheck?: () => boolean;
  /**
   * A tiers reload was tried here, whatever its result: the primary tells its workers to
   * reload too, so each records its own result in the reload metrics its /metrics aggregates
   * (a rejection the primary kept to itself would never reach TollgateConfigRejected).
   */
  readonly onTiersReloaded?: (actor: string) => void;
  /** The same for a routes reload. */
  readonly onRoutesReloaded?: (actor: string) => void;
}

export interface App {
  start(): Promise<{ port: number | null; adminPort: number | null }>;
  /**
   * Stop accepting, finish in-flight requests within the drain time, close the store.
   * `beforeClose` runs once /readyz already answers 503 (the primary drains its workers there).
   */
  stop(opts?: { beforeClose?: () => Promise<void> }): Promise<void>;
  reloadTiers(actor: string): Promise<TierParseResult>;
  reloadRoutes(actor: string): Promise<RoutesParseResult>;
  /** Re-reads the TLS pair (proxy port only); a bad pair is logged and the old one stays. */
  reloadTls(actor: string): Promise<void>;
  readonly metrics: Metrics;
}

const SYNC_INTERVAL_MS = 1000;
/** The actor of reloads the file watcher starts; every process watches for itself. */
export const FILE_WATCH = 'file-watch';

async function loadKeysFile(path: string): Promise<Array<{ key: string; tier: string; name: string }>> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new GatewayError('invalid_config', `invalid setting KEYS_FILE: cannot read JSON from ${path} (${(err as Error).message})`);
  }
  const keys = (doc as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) throw new GatewayError('invalid_config', `invalid setting KEYS_FILE: ${path} must hold {"keys":[{"key","tier","name"}]}`);
  return keys.map((k: unknown, i) => {
    const e = k as Record<string, unknown>;
    if (typeof e?.key !== 'string' || !API_KEY_FORMAT.test(e.key) || typeof e.tier !== 'string') {
      throw new GatewayError('invalid_config', `invalid setting KEYS_FILE: entry ${i} of ${path} needs "key" (8-128 of [A-Za-z0-9_-]) and "tier"`);
    }
    return { key: e.key, tier: e.tier, name: typeof e.name === 'string' ? e.name : `key ${i}` };
  });
}

export async function createApp(config: Config, log: Logger, options: AppOptions = {}): Promise<App> {
  const role = options.role ?? 'all';
  const clock = options.clock ?? systemClock;
  const metrics = new Metrics({ defaultMetrics: true });

  const tiersResult = await readTiersFile(config.tiersFile);
  if (!tiersResult.ok) throw new GatewayError('invalid_config', `invalid setting TIERS_FILE: ${tiersResult.reasons.join('; ')}`);
  let tiers: TierSet = tiersResult.tiers;
  const routes = new RouteTable({
    file: config.routesFile,
    tierNames: () => new Set(tiers.tiers.keys()),
    log,
    onReload: (ok, actor) => {
      metrics.configReload('routes', ok);
      if (ok) proxy.retain(routeUpstreams(routes.matcher.routes));
      options.onRoutesReloaded?.(actor);
    },
  });
  const routesResult = await routes.load();
  if (!routesResult.ok) throw new GatewayError('invalid_config', `invalid setting ROUTES_FILE: ${routesResult.reasons.join('; ')}`);
  // Checked in every role, so that a bad pair stops a WORKERS > 1 primary too (exit 2).
  const tlsFiles = config.tlsCertFile !== null && config.tlsKeyFile !== null ? [config.tlsCertFile, config.tlsKeyFile] as const : null;
  let tlsPair: TlsPair | null = null;
  if (tlsFiles !== null) {
    const r = await readTlsPair(...tlsFiles);
    if (!r.ok) throw new GatewayError('invalid_config', `invalid setting ${r.setting}: ${r.reason}`);
    tlsPair = r.pair;
  }

  // Stores: the Redis client comes from redisClient.ts, the one place that configures ioredis.
  let redis: Redis | Cluster | null = null;
  let limitStore: LimitStore;
  let keyStore: KeyStore;
  let blockStore: BlockStore;
  let control: Control;
  let breaker: StoreBreaker | null = null;
  if (config.store === 'redis') {
    redis = createRedisClient(config);
    // ioredis repeats its errors on every reconnect attempt, and they alternate (a refused
    // certificate, then "max retries"): each distinct message is logged once per outage.
    const seen = new Set<string>();
    const warnOnce = (what: string) => (err: Error) => {
      const key = `${what}: ${err.message}`;
      if (seen.has(key)) return;
      seen.add(key);
      log.warn({ err: { message: err.message } }, what);
    };
    redis.on('error', warnOnce('redis error'));
    redis.on('ready', () => {
      seen.clear();
      log.info('redis ready');
    });
    limitStore = new RedisLimitStore(redis, config.redisKeyPrefix);
    keyStore = new RedisKeyStore(redis, config.redisKeyPrefix);
    blockStore = new RedisBlockStore(redis, config.redisKeyPrefix);
    control = new RedisControl(redis, config.redisKeyPrefix, warnOnce('control channel error'));
    breaker = new StoreBreaker({
      timeoutMs: config.storeTimeoutMs,
      resetMs: 1000,
      probe: async () => redis?.ping(),
      onStateChange: (state, previous) => {
        metrics.setBreaker(state);
        // Once per outage: a failed half-open probe re-opens the breaker without a new transition to log.
        if (state === 'open' && previous === 'closed') audit(log, 'breaker.opened', { reason: `store failing or slower than ${config.storeTimeoutMs} ms`, mode: config.storeFailureMode });
        if (state === 'closed') audit(log, 'breaker.closed', { reason: 'store answered again' });
      },
    });
  } else {
    limitStore = new MemoryLimitStore(clock);
    keyStore = new MemoryKeyStore();
    blockStore = new MemoryBlockStore(clock);
    control = new MemoryControl();
  }

  const local = limitStore instanceof MemoryLimitStore ? limitStore : new MemoryLimitStore(clock);
  const denyCache = new DenyCache(clock);
  const keyCache = new KeyCache(clock);
  const blocked = new BlockedIps(clock);
  const health = new HealthState(config.healthMode, new Date(clock()));
  const limiter = new Limiter({
    store: limitStore, breaker, local, denyCache, failureMode: config.storeFailureMode, clock,
    onFallback: () => metrics.storeFallback.inc(),
  }, tiers);
  const keys = new KeyService(keyStore, control, (t) => tiers.tiers.has(t), clock, (event, fields) => audit(log, event, fields));
  const auth = new Authenticator(keyStore, keyCache, breaker);

  const storeUsable = () => breaker === null || (breaker.state === 'closed' && redis !== null && redis.status === 'ready');
  const instanceId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const controller = new HealthController({
    health, control, clock, storeUsable,
    fleet: redis === null ? new LocalHealthFleet(instanceId) : new RedisHealthFleet(redis, config.redisKeyPrefix, instanceId),
    tunables: config.health,
    concurrency: config.concurrencyLimit,
    onTransition: (t, signals) => {
      if (health.mode === 'auto' && health.override === null) return; // audited as health.changed when it takes force
      log.info({ from: t.from, to: t.to, reasons: t.reasons, signals, mode: health.mode }, 'automatic health state changed');
    },
    onWarn: (message, err) => log.warn({ err: { message: err.message } }, message),
  });
  metrics.watchHealth(() => ({
    inflight: controller.guard?.inFlight ?? 0,
    limit: controller.guard === null ? 0 : controller.concurrencyLimit,
    automatic: health.mode === 'manual' ? null : health.automatic?.status ?? 'NORMAL',
  }));

  health.onChange((to, from, cause, reasons) => {
    metrics.setHealth(to);
    metrics.healthTransitions.inc({ from, to, cause });
    denyCache.clear();
    log.info({ status: to, previous: from, cause }, 'health state in force');
    // An override is audited where it was set, with its actor; automatic changes and expiries where they take force.
    if (cause !== 'override') audit(log, 'health.changed', { from, to, cause, reasons, instance: instanceId });
  });

  // Cross-instance changes: pub/sub at once, the 1 s poll as the safety net.
  let keysVersion = -1;
  let blocksVersion = -1;
  const countBlocks = () => metrics.blockedIps.set(blocked.active().length);
  const refreshBlocks = async () => {
    blocked.replaceAll(await blockStore.list());
    countBlocks();
  };
  const onControl = (e: ControlEvent) => {
    switch (e.type) {
      case 'health':
        health.setOverride(e.override, clock());
        break;
      case 'health-auto':
        health.setAutomatic(e.record, clock());
        break;
      case 'keys':
        keyCache.invalidate(e.hashes);
        denyCache.clear();
        keysVersion = Math.max(keysVersion, e.version);
        break;
      case 'blocks':
        blocksVersion = Math.max(blocksVersion, e.version);
        refreshBlocks().catch((err: Error) => log.warn({ err: { message: err.message } }, 'could not refresh blocks'));
        break;
    }
  };
  const sync = async () => {
    const snap = await control.snapshot();
    health.setOverride(snap.override, clock());
    if (snap.automatic !== null && !controller.deciding) health.setAutomatic(snap.automatic, clock());
    if (snap.keysVersion !== keysVersion) {
      if (keysVersion !== -1) {
        // Changes we missed on pub/sub: we don't know which hashes, so drop them all.
        keyCache.clear();
        denyCache.clear();
      }
      keysVersion = snap.keysVersion;
    }
    if (snap.blocksVersion !== blocksVersion) {
      blocksVersion = snap.blocksVersion;
      await refreshBlocks();
    }
  };
  let syncTimer: NodeJS.Timeout | null = null;

  const applyTiers = (next: TierSet) => {
    tiers = next;
    limiter.setTiers(next);
  };
  let stopWatching: () => void = () => undefined;
  async function reloadTiers(actor: string): Promise<TierParseResult> {
    const read = await readTiersFile(config.tiersFile);
    // Routes in force must still name only tiers that exist: change the routes first.
    const missing = read.ok ? routesMissingTiers(routes.matcher.routes, new Set(read.tiers.tiers.keys())) : [];
    const r: TierParseResult = missing.length > 0 ? { ok: false, reasons: missing } : read;
    metrics.configReload('tiers', r.ok);
    if (!r.ok) {
      audit(log, 'tiers.rejected', { reasons: r.reasons, actor });
      options.onTiersReloaded?.(actor);
      return r;
    }
    applyTiers(r.tiers);
    audit(log, 'tiers.reloaded', { tiers: [...r.tiers.tiers.keys()], actor });
    options.onTiersReloaded?.(actor);
    return r;
  }

  let draining = false;
  const proxy = createUpstreamProxy({
    target: config.upstreamUrl,
    timeoutMs: config.upstreamTimeoutMs,
    headerMode: config.rateLimitHeaders,
    secure: config.tlsCertFile !== null,
    draining: () => draining,
    onError: (code, req, where, err, headers) => pipeline.onUpstreamError(req, where, reply(code), err, headers),
    onResponseHead: (req, seconds, status) => pipeline.onUpstreamHead(req, seconds, status),
    onCancelled: (req) => pipeline.onUpstreamCancelled(req),
    onResponseEnd: (req, res) => pipeline.onUpstreamEnd(req, res),
    dropKeyHeader: config.forwardApiKey ? null : config.apiKeyHeader.toLowerCase(),
  });
  const blockPolicy = { invalidKeyLimit: config.invalidKeyLimit, windowMs: config.invalidKeyWindowS * 1000, blockMs: config.ipBlockS * 1000 };
  const pipeline = createPipeline({
    apiKeyHeader: config.apiKeyHeader,
    headerMode: config.rateLimitHeaders,
    draftHeaders: config.rateLimitDraftHeaders,
    trusted: parseCidrList(config.trustProxy),
    blocked,
    auth,
    limiter,
    health,
    guard: controller.guard,
    signals: controller.recorder,
    proxy,
    metrics,
    log,
    draining: () => draining,
    routes,
    limitMode: config.limitMode,
    accessLog: config.accessLog ? new AccessLog({ lines: accessLogBatch(), sample: config.accessLogSample }) : null,
    onInvalidKey: async (ip) => {
      const block = breaker === null
        ? await blockStore.recordInvalid(ip, blockPolicy)
        : await breaker.call(() => blockStore.recordInvalid(ip, blockPolicy));
      if (block === null) return;
      blocked.add(block);
      countBlocks();
      audit(log, 'ip.blocked', { ip, until: new Date(block.until).toISOString(), reason: `${config.invalidKeyLimit} invalid API keys within ${config.invalidKeyWindowS} s` });
      await control.blocksChanged();
    },
  });

  async function plannedKey(id: string) {
    const key = await keys.stored(id);
    const planned = limiter.request(key, health.status, 1, health.ramp);
    if (planned === null) throw new GatewayError('invalid_request', `key ${id} names tier ${JSON.stringify(key.tier)}, which is not in force`);
    return { key, plan: planned.plan };
  }

  const admin = createAdminServer({
    token: config.adminToken,
    log,
    ready: () => !draining && (config.storeFailureMode !== 'closed' || storeUsable()) && (options.readyCheck?.() ?? true),
    metrics: options.metricsOverride ?? (async () => ({ contentType: metrics.contentType, body: await metrics.text() })),
    health: {
      current: () => healthView(health),
      async pin(pin, actor) {
        const now = clock();
        const previous = health.current.status;
        const override: HealthOverride = {
          status: pin.status, since: new Date(now).toISOString(),
          until: pin.ttlSeconds === null ? null : new Date(now + pin.ttlSeconds * 1000).toISOString(),
          reason: pin.reason, by: actor,
        };
        await control.setOverride(override);
        health.setOverride(override, now);
        audit(log, 'health.changed', { from: previous, to: pin.status, cause: 'override', until: override.until, reason: pin.reason, actor });
        return healthView(health);
      },
      async unpin(actor) {
        if (health.override === null) return false;
        const previous = health.current.status;
        await control.setOverride(null);
        health.setOverride(null, clock());
        audit(log, 'health.changed', { from: previous, to: health.current.status, cause: 'override', reason: 'override removed', actor });
        return true;
      },
    },
    keys,
    usage: async (id) => {
      const { key, plan } = await plannedKey(id);
      const quota = plan.template.quotaIndex >= 0 ? await limiter.changeQuota(plan, null) : null;
      return usageBody(id, key.tier, plan, await limiter.peek(plan), quota);
    },
    quota: async (id, change, actor) => {
      const { key, plan } = await plannedKey(id);
      if (plan.template.quotaIndex < 0) throw new GatewayError('invalid_request', `key ${id} has no quota (neither its tier nor its limits set one)`);
      const usage = await limiter.changeQuota(plan, change);
      // Every instance drops the denials it holds for this key.
      await control.keysChanged([key.hash]);
      audit(log, 'key.quota_changed', { keyId: id, change, actor });
      return quotaBody(usage);
    },
    tiers: {
      current: () => tiersToJson(tiers),
      async reload(actor) {
        const r = await reloadTiers(actor);
        return r.ok ? { ok: true, tiers: tiersToJson(r.tiers) } : r;
      },
    },
    routes: {
      current: () => routes.toJson(),
      async reload(actor) {
        const r = await routes.reload(actor);
        return r.ok ? { ok: true, routes: routes.toJson() } : r;
      },
    },
    blocks: {
      list: async () => blockStore.list(),
      async unblock(ip, actor) {
        const removed = await blockStore.unblock(ip);
        blocked.remove(ip);
        countBlocks();
        if (removed) {
          audit(log, 'ip.unblocked', { ip, actor });
          await control.blocksChanged();
        }
        return removed;
      },
    },
  });

  const listener = createProxyListener({
    tls: tlsPair === null ? null : { pair: tlsPair, minVersion: config.tlsMinVersion },
    http2: config.http2,
    onRequest: pipeline.handleRequest,
    onUpgrade: pipeline.handleUpgrade,
    onResetFlood: (ip) => log.warn({ ip }, 'h2 session closed: streams reset faster than allowed (rapid reset)'),
  });
  const proxyServer = listener.server;
  let stopWatchingTls: () => void = () => undefined;
  async function reloadTls(actor: string): Promise<void> {
    if (tlsFiles === null || role === 'admin') return;
    const r = await readTlsPair(...tlsFiles);
    metrics.configReload('tls', r.ok);
    if (!r.ok) {
      log.error({ setting: r.setting, reason: r.reason }, 'TLS pair rejected; the certificate in force stays');
      audit(log, 'tls.rejected', { reason: r.reason, actor, kept: tlsPair?.fingerprint });
      return;
    }
    listener.setPair(r.pair);
    tlsPair = r.pair;
    audit(log, 'tls.reloaded', { fingerprint: r.pair.fingerprint, validTo: r.pair.validTo, actor });
  }

  async function waitForRedis(timeoutMs: number): Promise<boolean> {
    if (redis === null || redis.status === 'ready') return true;
    const r = redis;
    return new Promise((resolve) => {
      const t = setTimeout(() => { r.off('ready', done); resolve(false); }, timeoutMs);
      function done() { clearTimeout(t); resolve(true); }
      r.once('ready', done);
    });
  }

  async function importKeys(): Promise<void> {
    if (config.keysFile === '') return;
    const entries = await loadKeysFile(config.keysFile);
    for (const e of entries) {
      if (!tiers.tiers.has(e.tier)) {
        throw new GatewayError('invalid_config', `invalid setting KEYS_FILE: key "${e.name}" names unknown tier ${JSON.stringify(e.tier)}`);
      }
    }
    let created = 0;
    for (const e of entries) if (await keys.importKey(e)) created += 1;
    log.info({ created, total: entries.length }, 'keys file loaded');
  }

  function listen(server: Server, port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  return {
    metrics,
    reloadTiers,
    reloadRoutes: (actor) => routes.reload(actor),
    reloadTls,
    async start() {
      if (redis !== null && !(await waitForRedis(5000))) {
        log.error('redis not reachable at startup; serving with STORE_FAILURE_MODE until it is');
      }
      if (role !== 'proxy') {
        // Validates keys against tiers even when Redis is down; the import itself retries on ready.
        try {
          await importKeys();
        } catch (err) {
          if ((err as GatewayError).code === 'invalid_config') throw err;
          log.warn({ err: { message: (err as Error).message } }, 'could not load keys file yet; will retry when the store is ready');
          redis?.once('ready', () => { importKeys().catch((e: Error) => log.error({ err: { message: e.message } }, 'keys file import failed')); });
        }
      }
      await control.start(onControl);
      await sync().catch((err: Error) => log.warn({ err: { message: err.message } }, 'initial sync failed'));
      syncTimer = setInterval(() => {
        sync().catch(() => undefined);
      }, SYNC_INTERVAL_MS);
      syncTimer.unref();
      controller.start();
      stopWatching = watchFiles([config.tiersFile], () => { void reloadTiers(FILE_WATCH); });
      routes.watch(FILE_WATCH);
      if (tlsFiles !== null && role !== 'admin') stopWatchingTls = watchFiles(tlsFiles, () => { void reloadTls(FILE_WATCH); });
      const port = role === 'admin' ? null : await listen(proxyServer, config.port, config.host);
      const adminPort = role === 'proxy' ? null : await listen(admin, config.adminPort, config.adminHost);
      log.info({ port, adminPort, protocol: port === null ? undefined : listener.kind, store: config.store, upstream: config.upstreamUrl, role }, 'tollgate listening');
      return { port, adminPort };
    },
    async stop(opts) {
      draining = true;
      if (opts?.beforeClose) await opts.beforeClose();
      stopWatching();
      routes.close();
      stopWatchingTls();
      if (syncTimer) clearInterval(syncTimer);
      await controller.stop();
      const closed = new Promise<void>((resolve) => {
        if (!proxyServer.listening) return resolve();
        proxyServer.close(() => resolve());
      });
      // Idle keep-alive sockets (and h2 sessions) would hold close() open; in-flight ones finish first.
      listener.closeIdle();
      const idleSweep = setInterval(() => listener.closeIdle(), 100);
      let timer: NodeJS.Timeout | null = null;
      const timedOut = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), config.shutdownTimeoutMs); });
      const late = await Promise.race([closed.then(() => false), timedOut]);
      clearInterval(idleSweep);
      if (timer) clearTimeout(timer);
      if (late) {
        log.warn({ timeoutMs: config.shutdownTimeoutMs }, 'drain time over; closing remaining connections');
        listener.closeAll();
      }
      await new Promise<void>((resolve) => {
        if (!admin.listening) return resolve();
        admin.close(() => resolve());
        admin.closeAllConnections();
      });
      proxy.close();
      breaker?.shutdown();
      local.close();
      await control.close();
      if (redis !== null) {
        await redis.quit().catch(() => redis?.disconnect());
      }
      // Every access-log line of the drained requests is on stdout before the process exits.
      await flushLogs();
    },
  };
}
