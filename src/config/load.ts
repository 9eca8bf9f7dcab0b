import convict from 'convict';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { GatewayError } from '../errors';
import { addFormats, envNameOf, schema, type LOG_LEVELS } from './schema';

export type StoreKind = 'memory' | 'redis';
export type FailureMode = 'local' | 'open' | 'closed';
export type HeaderMode = 'gateway' | 'upstream' | 'none';
export type HealthMode = 'manual' | 'auto' | 'shadow';
export type LimitMode = 'enforce' | 'shadow';
/** `off`, `auto`, or a fixed number of slots. */
export type ConcurrencyLimit = 'off' | 'auto' | number;

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly adminPort: number;
  readonly adminHost: string;
  readonly adminToken: string | null;
  readonly upstreamUrl: string;
  readonly upstreamTimeoutMs: number;
  readonly store: StoreKind;
  readonly redisUrl: string | null;
  readonly redisClusterNodes: string | null;
  readonly redisSentinels: string | null;
  readonly redisSentinelName: string | null;
  readonly redisPassword: string | null;
  readonly redisTls: boolean;
  readonly redisKeyPrefix: string;
  readonly storeTimeoutMs: number;
  readonly storeFailureMode: FailureMode;
  readonly tiersFile: string;
  readonly keysFile: string;
  readonly apiKeyHeader: string;
  readonly trustProxy: string | null;
  readonly rateLimitHeaders: HeaderMode;
  readonly rateLimitDraftHeaders: boolean;
  readonly invalidKeyLimit: number;
  readonly invalidKeyWindowS: number;
  readonly ipBlockS: number;
  readonly shutdownTimeoutMs: number;
  readonly workers: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly healthMode: HealthMode;
  readonly concurrencyLimit: ConcurrencyLimit;
  readonly health: HealthTunables;
  readonly routesFile: string;
  readonly limitMode: LimitMode;
  readonly forwardApiKey: boolean;
  readonly accessLog: boolean;
  readonly accessLogSample: number;
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
  readonly tlsMinVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly http2: boolean;
}

export interface HealthTunables {
  readonly latencyRatio: number;
  readonly latencyRatioCritical: number;
  readonly failureShare: number;
  readonly failureShareCritical: number;
  readonly minSamples: number;
  readonly rejectionShare: number;
  readonly loopLagMs: number;
  readonly loopLagCriticalMs: number;
  readonly enterWindowS: number;
  readonly enterSeconds: number;
  readonly dwellS: number;
  readonly dwellMaxS: number;
  readonly flapWindowS: number;
  readonly rampS: number;
  readonly concurrencyInitial: number;
  readonly concurrencyMin: number;
  readonly concurrencyMax: number;
  readonly concurrencyTolerance: number;
}

export interface ConfigSources {
  env: NodeJS.ProcessEnv;
  argv: readonly string[];
  /** Directory holding `config/default.json`; the package root. */
  baseDir: string;
  cwd: string;
}

function invalid(message: string): GatewayError {
  return new GatewayError('invalid_config', message);
}

/**
 * "port: must be …: value was \"abc\"" → "invalid setting PORT: must be …; got \"abc\"".
 * convict leaves out falsy values (0, ""), so the value is read back from the config.
 */
function rewriteConvictMessage(line: string, valueOf: (key: string) => unknown): string {
  const m = /^([A-Za-z]+): (.*?)(?:: value was (.*))?$/.exec(line);
  if (!m) return line;
  const [, key, why, value] = m;
  return `invalid setting ${envNameOf(key)}: ${why}; got ${value ?? JSON.stringify(valueOf(key))}`;
}

/** Unknown keys named with the file they are in (there can be two files). */
function checkFileKeys(path: string): void {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw invalid(`invalid config file ${path}: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid(`invalid config file ${path}: must hold a JSON object`);
  for (const key of Object.keys(doc)) {
    if (!(key in schema)) throw invalid(`unknown setting "${key}" in config file ${path}; keys are the env names in camelCase, e.g. upstreamUrl`);
  }
}

function knownFlags(): Set<string> {
  return new Set(Object.values(schema).map((s) => `--${s.arg}`).concat('--config-file'));
}

function checkFlags(argv: readonly string[]): void {
  const known = knownFlags();
  for (const a of argv) {
    if (!a.startsWith('--')) continue;
    const name = a.split('=')[0];
    if (!known.has(name)) throw invalid(`unknown flag ${name}; flags are the setting names in kebab case, e.g. --upstream-url`);
  }
}

function flagValue(argv: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === flag) return argv[i + 1];
    if (argv[i].startsWith(`${flag}=`)) return argv[i].slice(flag.length + 1);
  }
  return undefined;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/;

/**
 * Settings, lowest to highest precedence: defaults, config/default.json, CONFIG_FILE,
 * env, flags (convict re-applies env and args over loaded files). Validated strictly
 * once, then frozen. Throws GatewayError('invalid_config') with a one-line message.
 */
export function loadConfig(src: ConfigSources): Config {
  addFormats();
  checkFlags(src.argv);
  // convict reads only the variables named in the schema, so passing env whole is safe.
  const c = convict(schema, { env: src.env, args: [...src.argv] });
  try {
    const defaultFile = resolve(src.baseDir, 'config/default.json');
    if (existsSync(defaultFile)) {
      checkFileKeys(defaultFile);
      c.loadFile(defaultFile);
    }
    const configFile = flagValue(src.argv, '--config-file') ?? src.env.CONFIG_FILE;
    if (configFile) {
      const path = resolve(src.cwd, configFile);
      if (!existsSync(path)) throw invalid(`invalid setting CONFIG_FILE: no such file; got ${JSON.stringify(configFile)}`);
      checkFileKeys(path);
      c.loadFile(path);
    }
    c.validate({ allowed: 'strict' });
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    const first = String((err as Error).message).split('\n')[0];
    if (/not declared in the schema/.test(first)) {
      const key = /'([^']+)'/.exec(first)?.[1] ?? '?';
      throw invalid(`unknown setting "${key}" in a config file; keys are the env names in camelCase, e.g. upstreamUrl`);
    }
    if (/Unexpected token|JSON/.test(first)) throw invalid(`invalid config file: ${first}`);
    throw invalid(rewriteConvictMessage(first, (key) => {
      try {
        return c.get(key as never);
      } catch {
        return undefined;
      }
    }));
  }
  const raw = c.getProperties() as Record<string, unknown>;
  return finish(raw);
}

function finish(raw: Record<string, unknown>): Config {
  const get = <T>(k: string) => raw[k] as T;
  const upstreamUrl = get<string | null>('upstreamUrl');
  if (!upstreamUrl) throw invalid('invalid setting UPSTREAM_URL: required, e.g. http://127.0.0.1:3000; got nothing');
  const redisUrl = get<string | null>('redisUrl');
  const clusterNodes = get<string | null>('redisClusterNodes');
  const sentinels = get<string | null>('redisSentinels');
  const redisSettings = [redisUrl, clusterNodes, sentinels].filter((v) => v).length;
  if (redisSettings > 1) {
    throw invalid('invalid setting REDIS_URL: set only one of REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINELS');
  }
  const store = (get<StoreKind | null>('store') ?? (redisSettings > 0 ? 'redis' : 'memory'));
  if (store === 'redis' && redisSettings === 0) {
    throw invalid('invalid setting STORE: "redis" needs REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS; got "redis"');
  }
  if (sentinels && !get<string | null>('redisSentinelName')) {
    throw invalid('invalid setting REDIS_SENTINEL_NAME: required with REDIS_SENTINELS; got nothing');
  }
  if (get<number>('adminPort') === get<number>('port') && get<number>('port') !== 0) {
    throw invalid(`invalid setting ADMIN_PORT: must differ from PORT; got ${get<number>('adminPort')}`);
  }
  const adminHost = get<string>('adminHost');
  if (!LOOPBACK.test(adminHost) && !get<string | null>('adminToken')) {
    throw invalid(`invalid setting ADMIN_TOKEN: required when ADMIN_HOST is not a loopback address; got nothing (ADMIN_HOST ${JSON.stringify(adminHost)})`);
  }
  const workersRaw = get<number | 'auto'>('workers');
  const workers = workersRaw === 'auto' ? availableParallelism() : workersRaw;
  if (workers > 1 && store === 'memory') {
    throw invalid(`invalid setting WORKERS: more than 1 needs the redis store (the memory store is per process, so limits would multiply); got ${JSON.stringify(workersRaw)}`);
  }
  if ((get<string | null>('tlsCertFile') === null) !== (get<string | null>('tlsKeyFile') === null)) {
    throw invalid(`invalid setting ${get('tlsCertFile') === null ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE'}: required with ${get('tlsCertFile') === null ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'} (both or neither); got nothing`);
  }
  if (get<number>('healthEnterSeconds') > get<number>('healthEnterWindowS')) {
    throw invalid(`invalid setting HEALTH_ENTER_SECONDS: must not exceed HEALTH_ENTER_WINDOW_S (${get<number>('healthEnterWindowS')}); got ${get<number>('healthEnterSeconds')}`);
  }
  if (get<number>('concurrencyMin') > get<number>('concurrencyMax')) {
    throw invalid(`invalid setting CONCURRENCY_MIN: must not exceed CONCURRENCY_MAX (${get<number>('concurrencyMax')}); got ${get<number>('concurrencyMin')}`);
  }
  const config: Config = {
    port: get('port'),
    host: get('host'),
    adminPort: get('adminPort'),
    adminHost,
    adminToken: get('adminToken'),
    upstreamUrl,
    upstreamTimeoutMs: get('upstreamTimeoutMs'),
    store,
    redisUrl,
    redisClusterNodes: clusterNodes,
    redisSentinels: sentinels,
    redisSentinelName: get('redisSentinelName'),
    redisPassword: get('redisPassword'),
    redisTls: get('redisTls'),
    redisKeyPrefix: get('redisKeyPrefix'),
    storeTimeoutMs: get('storeTimeoutMs'),
    storeFailureMode: get('storeFailureMode'),
    tiersFile: get('tiersFile'),
    keysFile: get('keysFile'),
    apiKeyHeader: get<string>('apiKeyHeader').toLowerCase(),
    trustProxy: get('trustProxy'),
    rateLimitHeaders: get('rateLimitHeaders'),
    rateLimitDraftHeaders: get('rateLimitDraftHeaders'),
    invalidKeyLimit: get('invalidKeyLimit'),
    invalidKeyWindowS: get('invalidKeyWindowS'),
    ipBlockS: get('ipBlockS'),
    shutdownTimeoutMs: get('shutdownTimeoutMs'),
    workers,
    logLevel: get('logLevel'),
    healthMode: get('healthMode'),
    concurrencyLimit: get('concurrencyLimit'),
    health: Object.freeze({
      latencyRatio: get<number>('healthLatencyRatio'),
      latencyRatioCritical: get<number>('healthLatencyRatioCritical'),
      failureShare: get<number>('healthFailureShare'),
      failureShareCritical: get<number>('healthFailureShareCritical'),
      minSamples: get<number>('healthMinSamples'),
      rejectionShare: get<number>('healthRejectionShare'),
      loopLagMs: get<number>('healthLoopLagMs'),
      loopLagCriticalMs: get<number>('healthLoopLagCriticalMs'),
      enterWindowS: get<number>('healthEnterWindowS'),
      enterSeconds: get<number>('healthEnterSeconds'),
      dwellS: get<number>('healthDwellS'),
      dwellMaxS: get<number>('healthDwellMaxS'),
      flapWindowS: get<number>('healthFlapWindowS'),
      rampS: get<number>('healthRampS'),
      concurrencyInitial: get<number>('concurrencyInitial'),
      concurrencyMin: get<number>('concurrencyMin'),
      concurrencyMax: get<number>('concurrencyMax'),
      concurrencyTolerance: get<number>('concurrencyTolerance'),
    }),
    routesFile: get('routesFile'),
    limitMode: get('limitMode'),
    forwardApiKey: get('forwardApiKey'),
    accessLog: get('accessLog'),
    accessLogSample: get('accessLogSample'),
    tlsCertFile: get('tlsCertFile'),
    tlsKeyFile: get('tlsKeyFile'),
    tlsMinVersion: get('tlsMinVersion'),
    http2: get('http2'),
  };
  return Object.freeze(config);
}
