import convict from 'convict';
import { parseCidrList } from '../gateway/clientIp';

/**
 * Custom formats, so every bad value produces a message that says what is allowed.
 * `coerce` only converts what clearly is a number/boolean: a bad value reaches
 * `validate` unchanged and is quoted in the error ("value was \"abc\"").
 */
let formatsAdded = false;
export function addFormats(): void {
  if (formatsAdded) return;
  formatsAdded = true;
  const toInt = (v: string): number | string => (/^-?\d+$/.test(v.trim()) ? Number(v) : v);
  convict.addFormats({
    port: {
      validate(v: unknown) {
        if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) {
          throw new Error('must be a port number 0-65535');
        }
      },
      coerce: toInt,
    },
    positiveInt: {
      validate(v: unknown) {
        if (!Number.isInteger(v) || (v as number) < 1) throw new Error('must be a whole number of at least 1');
      },
      coerce: toInt,
    },
    bool: {
      validate(v: unknown) {
        if (typeof v !== 'boolean') throw new Error('must be true or false');
      },
      coerce: (v: string) => (v === 'true' ? true : v === 'false' ? false : v),
    },
    httpUrl: {
      validate(v: unknown) {
        if (v === null) return;
        if (typeof v !== 'string' || !/^https?:\/\/[^/]+/.test(v) || !URL.canParse(v)) {
          throw new Error('must be an http:// or https:// URL such as http://127.0.0.1:3000');
        }
      },
    },
    redisUrl: {
      validate(v: unknown) {
        if (v === null) return;
        if (typeof v !== 'string' || !/^rediss?:\/\/[^/]+/.test(v) || !URL.canParse(v)) {
          throw new Error('must be redis://[:password@]host:port[/db] or rediss://…');
        }
      },
    },
    hostPortList: {
      validate(v: unknown) {
        if (v === null) return;
        if (typeof v !== 'string' || v.split(',').some((hp) => !/^[^\s:,]+:\d{1,5}$/.test(hp.trim()))) {
          throw new Error('must be a comma list of host:port');
        }
      },
    },
    host: {
      validate(v: unknown) {
        if (typeof v !== 'string' || v.length === 0 || /\s/.test(v)) throw new Error('must be a host name or IP address');
      },
    },
    headerName: {
      validate(v: unknown) {
        if (typeof v !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(v)) throw new Error('must be an HTTP header name');
      },
    },
    cidrList: {
      validate(v: unknown) {
        if (v === null) return;
        if (typeof v !== 'string') throw new Error('must be a comma list of CIDRs such as 10.0.0.0/8,127.0.0.1');
        parseCidrList(v); // throws with the bad entry named
      },
    },
    workers: {
      validate(v: unknown) {
        if (v === 'auto') return;
        if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 256) throw new Error('must be "auto" or a whole number 1-256');
      },
      coerce: toInt,
    },
    concurrencyLimit: {
      validate(v: unknown) {
        if (v === 'off' || v === 'auto') return;
        if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 1_000_000) throw new Error('must be "off", "auto" or a whole number 1-1000000');
      },
      coerce: toInt,
    },
    positiveNumber: {
      validate(v: unknown) {
        if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error('must be a number above 0');
      },
      coerce: (v: string) => (/^\s*\d*\.?\d+\s*$/.test(v) ? Number(v) : v),
    },
    fraction: {
      validate(v: unknown) {
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw new Error('must be a number 0-1');
      },
      coerce: (v: string) => (/^\s*\d*\.?\d+\s*$/.test(v) ? Number(v) : v),
    },
    optionalString: {
      validate(v: unknown) {
        if (v !== null && typeof v !== 'string') throw new Error('must be a string');
      },
    },
  });
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function setting<T>(env: string, format: string | readonly string[] | StringConstructor, def: T, doc: string) {
  const arg = env.toLowerCase().replace(/_/g, '-');
  return { env, arg, format: format as string | StringConstructor, default: def, doc, nullable: def === null } as const;
}

/** Keys are the env names in camelCase (SPEC §1); env and flag names derive from them. */
export const schema = {
  port: setting('PORT', 'port', 8080, 'proxy listener port'),
  host: setting('HOST', 'host', '0.0.0.0', 'proxy listener address'),
  adminPort: setting('ADMIN_PORT', 'port', 9090, 'admin listener port'),
  adminHost: setting('ADMIN_HOST', 'host', '127.0.0.1', 'admin listener address'),
  adminToken: setting('ADMIN_TOKEN', 'optionalString', null as string | null, 'bearer token for /admin/*'),
  upstreamUrl: setting('UPSTREAM_URL', 'httpUrl', null as string | null, 'where allowed requests go'),
  upstreamTimeoutMs: setting('UPSTREAM_TIMEOUT_MS', 'positiveInt', 30000, 'upstream response-head timeout'),
  store: setting('STORE', ['memory', 'redis'], null as string | null, 'memory or redis'),
  redisUrl: setting('REDIS_URL', 'redisUrl', null as string | null, 'single Redis URL'),
  redisClusterNodes: setting('REDIS_CLUSTER_NODES', 'hostPortList', null as string | null, 'Redis Cluster seed nodes'),
  redisSentinels: setting('REDIS_SENTINELS', 'hostPortList', null as string | null, 'Sentinel host:port list'),
  redisSentinelName: setting('REDIS_SENTINEL_NAME', 'optionalString', null as string | null, 'Sentinel master name'),
  redisPassword: setting('REDIS_PASSWORD', 'optionalString', null as string | null, 'password for Cluster/Sentinel nodes'),
  redisTls: setting('REDIS_TLS', 'bool', false, 'TLS to Cluster/Sentinel nodes (REDIS_URL uses rediss://)'),
  redisKeyPrefix: setting('REDIS_KEY_PREFIX', String, 'tollgate:', 'prefix of every key'),
  storeTimeoutMs: setting('STORE_TIMEOUT_MS', 'positiveInt', 50, 'store call timeout for the breaker'),
  storeFailureMode: setting('STORE_FAILURE_MODE', ['local', 'open', 'closed'], 'local', 'behaviour while the store is unusable'),
  tiersFile: setting('TIERS_FILE', String, 'config/tiers.json', 'tier definitions'),
  keysFile: setting('KEYS_FILE', String, 'config/keys.json', 'API keys loaded at startup'),
  apiKeyHeader: setting('API_KEY_HEADER', 'headerName', 'x-api-key', 'header carrying the API key'),
  trustProxy: setting('TRUST_PROXY', 'cidrList', null as string | null, 'CIDRs whose X-Forwarded-For is believed'),
  rateLimitHeaders: setting('RATE_LIMIT_HEADERS', ['gateway', 'upstream', 'none'], 'gateway', 'rate-limit header mode'),
  rateLimitDraftHeaders: setting('RATE_LIMIT_DRAFT_HEADERS', 'bool', false, 'emit IETF RateLimit fields'),
  invalidKeyLimit: setting('INVALID_KEY_LIMIT', 'positiveInt', 10, 'bad keys before an IP is blocked'),
  invalidKeyWindowS: setting('INVALID_KEY_WINDOW_S', 'positiveInt', 60, 'window for counting bad keys'),
  ipBlockS: setting('IP_BLOCK_S', 'positiveInt', 300, 'block duration'),
  shutdownTimeoutMs: setting('SHUTDOWN_TIMEOUT_MS', 'positiveInt', 10000, 'drain time'),
  workers: setting('WORKERS', 'workers', 1 as number | string, 'worker processes'),
  logLevel: setting('LOG_LEVEL', LOG_LEVELS, 'info', 'pino level'),
  // SPEC §8
  healthMode: setting('HEALTH_MODE', ['manual', 'auto', 'shadow'], 'manual', 'who sets the health state'),
  concurrencyLimit: setting('CONCURRENCY_LIMIT', 'concurrencyLimit', 'off' as string | number, 'in-flight guard towards the upstream'),
  // Tunables of the automatic health state and the adaptive guard (docs/health.md)
  healthLatencyRatio: setting('HEALTH_LATENCY_RATIO', 'positiveNumber', 2, 'upstream latency ÷ baseline that means DEGRADED'),
  healthLatencyRatioCritical: setting('HEALTH_LATENCY_RATIO_CRITICAL', 'positiveNumber', 10, 'upstream latency ÷ baseline that means CRITICAL'),
  healthFailureShare: setting('HEALTH_FAILURE_SHARE', 'fraction', 0.1, 'share of overload-class upstream failures that means DEGRADED'),
  healthFailureShareCritical: setting('HEALTH_FAILURE_SHARE_CRITICAL', 'fraction', 0.5, 'share of overload-class upstream failures that means CRITICAL'),
  healthMinSamples: setting('HEALTH_MIN_SAMPLES', 'positiveInt', 20, 'upstream requests per second needed before latency and failure shares count'),
  healthRejectionShare: setting('HEALTH_REJECTION_SHARE', 'fraction', 0.05, 'share of requests refused by the in-flight guard that means DEGRADED'),
  healthLoopLagMs: setting('HEALTH_LOOP_LAG_MS', 'positiveInt', 250, 'event-loop lag (p99, ms) that means DEGRADED'),
  healthLoopLagCriticalMs: setting('HEALTH_LOOP_LAG_CRITICAL_MS', 'positiveInt', 1000, 'event-loop lag (p99, ms) that means CRITICAL'),
  healthEnterWindowS: setting('HEALTH_ENTER_WINDOW_S', 'positiveInt', 5, 'seconds looked at to enter a worse state'),
  healthEnterSeconds: setting('HEALTH_ENTER_SECONDS', 'positiveInt', 3, 'seconds of that window that must call for the worse state'),
  healthDwellS: setting('HEALTH_DWELL_S', 'positiveInt', 60, 'quiet seconds before stepping to a better state'),
  healthDwellMaxS: setting('HEALTH_DWELL_MAX_S', 'positiveInt', 600, 'the dwell doubles on each flap up to this'),
  healthFlapWindowS: setting('HEALTH_FLAP_WINDOW_S', 'positiveInt', 300, 'a worse state again within this long of leaving one is a flap'),
  healthRampS: setting('HEALTH_RAMP_S', 'positiveInt', 60, 'seconds over which limits come back after a recovery'),
  concurrencyInitial: setting('CONCURRENCY_INITIAL', 'positiveInt', 100, 'CONCURRENCY_LIMIT=auto: the first limit'),
  concurrencyMin: setting('CONCURRENCY_MIN', 'positiveInt', 4, 'CONCURRENCY_LIMIT=auto: the limit never goes below this'),
  concurrencyMax: setting('CONCURRENCY_MAX', 'positiveInt', 1000, 'CONCURRENCY_LIMIT=auto: the limit never goes above this'),
  concurrencyTolerance: setting('CONCURRENCY_TOLERANCE', 'positiveNumber', 2, 'CONCURRENCY_LIMIT=auto: latency ÷ baseline allowed before the limit shrinks'),
  // SPEC §10
  routesFile: setting('ROUTES_FILE', String, 'config/routes.json', 'route definitions'),
  limitMode: setting('LIMIT_MODE', ['enforce', 'shadow'], 'enforce', 'enforce limits or only count would-be refusals'),
  forwardApiKey: setting('FORWARD_API_KEY', 'bool', true, 'send the API key header to the upstream'),
  accessLog: setting('ACCESS_LOG', 'bool', true, 'one JSON line per request'),
  accessLogSample: setting('ACCESS_LOG_SAMPLE', 'fraction', 1, 'share of 2xx/3xx access-log lines kept'),
  // SPEC §11
  tlsCertFile: setting('TLS_CERT_FILE', 'optionalString', null as string | null, 'PEM certificate for the proxy port'),
  tlsKeyFile: setting('TLS_KEY_FILE', 'optionalString', null as string | null, 'PEM private key for the proxy port'),
  tlsMinVersion: setting('TLS_MIN_VERSION', ['TLSv1.2', 'TLSv1.3'], 'TLSv1.2', 'lowest TLS version offered'),
  http2: setting('HTTP2', 'bool', true, 'offer HTTP/2 through ALPN with TLS'),
};

export function envNameOf(key: string): string {
  return (schema as Record<string, { env: string }>)[key]?.env ?? key;
}
