'use strict';
// http-proxy + keep-alive agent + rate-limiter-flexible RateLimiterRedis (ioredis),
// keyed by the x-api-key header. Unknown/missing key -> 401, over the limit -> 429.
// Limits come from the same tiers/keys files tollgate gets (BENCH_TIERS_FILE,
// BENCH_KEYS_FILE). Default rlflex options: no in-memory block cache, no insurance limiter.
// env: PORT, HOST, UPSTREAM_URL, REDIS_URL, BENCH_TIERS_FILE, BENCH_KEYS_FILE, MAX_SOCKETS
const http = require('http');
const Redis = require('ioredis');
const { RateLimiterRedis, RateLimiterRes } = require('rate-limiter-flexible');
const { env, loadLimits, onSignals, createBaselineProxy } = require('./common');

const { windowSeconds, limits, keyTier } = loadLimits();
const redis = new Redis(env('REDIS_URL'), { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
const limiters = {};
for (const [tier, points] of Object.entries(limits)) {
  limiters[tier] = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `rlflex:${tier}`,
    points,
    duration: windowSeconds,
  });
}

const { agent, proxy } = createBaselineProxy();

function json(res, status, body, headers) {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), ...headers });
  res.end(s);
}

function rlHeaders(limit, r) {
  return {
    'x-ratelimit-limit': String(limit),
    'x-ratelimit-remaining': String(Math.max(0, r.remainingPoints)),
    'x-ratelimit-reset': String(Math.ceil((Date.now() + r.msBeforeNext) / 1000)),
  };
}

const server = http.createServer((req, res) => {
  const key = req.headers['x-api-key'];
  if (typeof key !== 'string' || key === '') return json(res, 401, { error: 'missing_api_key', message: 'no key' });
  const tier = keyTier.get(key);
  if (!tier) return json(res, 401, { error: 'invalid_api_key', message: 'unknown key' });
  const limit = limits[tier];
  limiters[tier].consume(key).then(
    (r) => {
      const h = rlHeaders(limit, r);
      for (const name in h) res.setHeader(name, h[name]);
      proxy.web(req, res);
    },
    (r) => {
      if (r instanceof RateLimiterRes) {
        const retryAfter = Math.max(1, Math.ceil(r.msBeforeNext / 1000));
        json(res, 429, { error: 'rate_limited', tier, limit, retryAfter, message: 'slow down' },
          { 'retry-after': String(retryAfter), ...rlHeaders(limit, r) });
      } else {
        json(res, 503, { error: 'store_unavailable', message: String(r && r.message) });
      }
    },
  );
});
server.keepAliveTimeout = 75000;
server.headersTimeout = 76000;

redis.once('ready', () => {
  server.listen(Number(env('PORT')), env('HOST', '127.0.0.1'), () => console.log('ready'));
});
redis.on('error', (e) => console.error('redis error', e.message));
onSignals(async () => {
  agent.destroy();
  await new Promise((r) => server.close(r));
  redis.disconnect();
});
