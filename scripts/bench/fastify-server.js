'use strict';
// Fastify 5 + @fastify/http-proxy + @fastify/rate-limit with its Redis store (ioredis),
// keyed by the x-api-key header; per-key max from the same tiers/keys files tollgate gets.
// Unknown/missing key -> 401 (onRequest hook registered before the rate limiter's hook).
// env: PORT, HOST, UPSTREAM_URL, REDIS_URL, BENCH_TIERS_FILE, BENCH_KEYS_FILE
const Fastify = require('fastify');
const Redis = require('ioredis');
const { env, loadLimits, onSignals } = require('./common');

async function main() {
  const { windowSeconds, limits, keyTier } = loadLimits();
  const redis = new Redis(env('REDIS_URL'), { connectTimeout: 2000, maxRetriesPerRequest: 1 });
  redis.on('error', (e) => console.error('redis error', e.message));
  await new Promise((resolve) => redis.once('ready', resolve));

  const app = Fastify({ logger: false });
  app.decorateRequest('benchTier', null);
  app.addHook('onRequest', async (req, reply) => {
    const key = req.headers['x-api-key'];
    const tier = typeof key === 'string' ? keyTier.get(key) : undefined;
    if (!tier) {
      reply.code(401).send({ error: key ? 'invalid_api_key' : 'missing_api_key', message: 'bad key' });
      return reply;
    }
    req.benchTier = tier;
    return undefined;
  });
  await app.register(require('@fastify/rate-limit'), {
    global: true,
    max: (req) => limits[req.benchTier],
    timeWindow: windowSeconds * 1000,
    redis,
    nameSpace: 'fastify-rl:',
    keyGenerator: (req) => req.headers['x-api-key'],
  });
  await app.register(require('@fastify/http-proxy'), { upstream: env('UPSTREAM_URL'), prefix: '/' });
  await app.listen({ port: Number(env('PORT')), host: env('HOST', '127.0.0.1') });
  console.log('ready');
  onSignals(async () => {
    await app.close();
    redis.disconnect();
  });
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
