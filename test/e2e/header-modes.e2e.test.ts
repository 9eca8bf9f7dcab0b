import { startGateway, type GatewayProcess } from '../support/gateway';
import { startUpstream, type Upstream } from '../support/upstream';
import { get } from './fixtures';

/* RATE_LIMIT_HEADERS and RATE_LIMIT_DRAFT_HEADERS (SPEC §1, §3). */

let upstream: Upstream;
beforeAll(async () => { upstream = await startUpstream(); });
afterAll(async () => { await upstream?.close(); });

async function withGateway(env: Record<string, string>, fn: (gw: GatewayProcess) => Promise<void>): Promise<void> {
  const gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, ...env } });
  try {
    await fn(gw);
  } finally {
    await gw.stop();
  }
}

test('upstream mode: upstream X-RateLimit-* pass through untouched; ours only on 429', async () => {
  await withGateway({ RATE_LIMIT_HEADERS: 'upstream' }, async (gw) => {
    const ok = await get(`${gw.url}/upstream-ratelimit`, 'demo_free_key_123');
    expect(ok.status).toBe(200);
    expect(ok.headers['x-ratelimit-limit']).toBe('999');
    expect(ok.headers['x-ratelimit-remaining']).toBe('998');
    for (let i = 0; i < 19; i++) await get(`${gw.url}/`, 'demo_free_key_123');
    const limited = await get(`${gw.url}/upstream-ratelimit`, 'demo_free_key_123');
    expect(limited.status).toBe(429);
    expect(limited.headers['x-ratelimit-limit']).toBe('20');
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
  });
});

test('none mode: all rate-limit headers stripped; 429 keeps Retry-After', async () => {
  await withGateway({ RATE_LIMIT_HEADERS: 'none' }, async (gw) => {
    const ok = await get(`${gw.url}/upstream-ratelimit`, 'demo_free_key_123');
    expect(ok.status).toBe(200);
    expect(Object.keys(ok.headers).filter((h) => /ratelimit/i.test(h))).toEqual([]);
    for (let i = 0; i < 19; i++) await get(`${gw.url}/`, 'demo_free_key_123');
    const limited = await get(`${gw.url}/`, 'demo_free_key_123');
    expect(limited.status).toBe(429);
    expect(Object.keys(limited.headers).filter((h) => /ratelimit/i.test(h))).toEqual([]);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });
});

test('draft headers: RateLimit-Policy and RateLimit as structured fields, t = Retry-After on 429', async () => {
  await withGateway({ RATE_LIMIT_DRAFT_HEADERS: 'true' }, async (gw) => {
    const ok = await get(`${gw.url}/`, 'demo_free_key_123');
    expect(ok.headers['ratelimit-policy']).toBe('"free";q=20;w=60');
    const m = /^"free";r=(\d+);t=(\d+)$/.exec(String(ok.headers.ratelimit));
    expect(m).not.toBeNull();
    expect(m?.[1]).toBe(ok.headers['x-ratelimit-remaining']);
    const untilReset = Number(ok.headers['x-ratelimit-reset']) - Date.now() / 1000;
    expect(Math.abs(Number(m?.[2]) - untilReset)).toBeLessThanOrEqual(2);
    for (let i = 0; i < 19; i++) await get(`${gw.url}/`, 'demo_free_key_123');
    const limited = await get(`${gw.url}/`, 'demo_free_key_123');
    expect(limited.status).toBe(429);
    expect(limited.headers.ratelimit).toBe(`"free";r=0;t=${String(limited.headers['retry-after'])}`);
  });
});
