import { writeFileSync } from 'node:fs';
import { quotaPeriod } from '../../src/limit/calendar';
import { runGatewayToExit, startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest, type HttpResult } from '../support/http';
import { sleep } from '../support/processes';
import { startRedis, type RedisServer } from '../support/redis';
import { startUpstream, type Upstream } from '../support/upstream';
import { EXACT, get, writeTiers, type CreatedKey } from './fixtures';

/*
 * SPEC §9 through the real gateway on a real Redis: every response shape and header of a
 * plan, key expiry and rotation grace on the real clock, quota top-up and reset, identities,
 * per-key limits, bad admin input, and reloads that remove a window or a quota.
 */

const TIERS = {
  windowSeconds: 60,
  tiers: {
    free: { limit: 10, burst: 20, degraded: 2 },
    plan: { limit: 100, windows: [{ limit: 3, windowSeconds: 3600 }], quota: { limit: 50, period: 'day' } },
    daily: { limit: 100, quota: { limit: 3, period: 'day' } },
    persecond: { limit: 100, windows: [{ limit: 2, windowSeconds: 1 }], quota: { limit: 1000, period: 'day' } },
    monthly: { limit: 100, quota: { limit: 2, period: 'month', anchor: 'key' } },
  },
};

let upstream: Upstream;
let redis: RedisServer;
let gw: GatewayProcess;

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startUpstream(), startRedis()]);
  gw = await startGateway({
    env: { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, KEYS_FILE: '', TIERS_FILE: writeTiers(TIERS), RATE_LIMIT_DRAFT_HEADERS: 'true', INVALID_KEY_LIMIT: '3' },
  });
});
afterAll(async () => {
  await gw?.stop();
  await Promise.all([upstream?.close(), redis?.stop()]);
});

function admin(method: string, path: string, body?: unknown, g: GatewayProcess = gw): Promise<HttpResult> {
  return httpRequest(`${g.adminUrl}${path}`, {
    method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function newKey(body: Record<string, unknown>, g: GatewayProcess = gw): Promise<CreatedKey & Record<string, unknown>> {
  const r = await admin('POST', '/admin/keys', { name: 'plans-test', ...body }, g);
  if (r.status !== 201) throw new Error(`creating a key: ${r.status} ${r.body}`);
  return r.json();
}

const midnight = (): number => quotaPeriod('day', 0, Date.now()).endMs / 1000;

describe('responses and headers (SPEC §9)', () => {
  test('allowed: X-RateLimit-* describe the main window, X-Quota-* the quota, RateLimit-Policy every counter, RateLimit the scarcest', async () => {
    const k = await newKey({ tier: 'plan' });
    const r = await get(gw.url, k.key);
    expect(r.status).toBe(200);
    expect(r.headers['x-ratelimit-limit']).toBe('100');
    expect(r.headers['x-ratelimit-remaining']).toBe('99');
    expect(r.headers['x-quota-limit']).toBe('50');
    expect(r.headers['x-quota-remaining']).toBe('49');
    expect(Number(r.headers['x-quota-reset'])).toBe(midnight());
    expect(r.headers['ratelimit-policy']).toBe('"plan";q=100;w=60, "plan-3600s";q=3;w=3600, "plan-quota";q=50;w=86400');
    expect(r.headers.ratelimit).toMatch(/^"plan-3600s";r=2;t=\d+$/);
    expect(r.headers['retry-after']).toBeUndefined();
  });

  test('a tier without a quota sends no X-Quota-* and lists one policy item', async () => {
    const k = await newKey({ tier: 'free' });
    const r = await get(gw.url, k.key);
    expect(r.status).toBe(200);
    expect(r.headers['x-quota-limit']).toBeUndefined();
    expect(r.headers['ratelimit-policy']).toBe('"free";q=20;w=60');
  });

  test('refused by a window: 429 rate_limited naming that window\'s limit, Retry-After, the quota untouched by the refusal', async () => {
    const k = await newKey({ tier: 'plan' });
    for (let i = 0; i < 3; i++) expect((await get(gw.url, k.key)).status).toBe(200);
    const refused = await get(gw.url, k.key);
    expect(refused.status).toBe(429);
    const body = refused.json<Record<string, unknown>>();
    expect(body).toMatchObject({ error: 'rate_limited', tier: 'plan', limit: 3 });
    expect(body.retryAfter).toBe(Number(refused.headers['retry-after']));
    expect(refused.headers['x-ratelimit-limit']).toBe('100');
    expect(refused.headers['x-ratelimit-remaining']).toBe('97');
    expect(refused.headers['x-quota-remaining']).toBe('47');
    expect(refused.headers.ratelimit).toBe(`"plan-3600s";r=0;t=${refused.headers['retry-after']}`);
    // Refused again and again: still 47 left of the quota.
    for (let i = 0; i < 5; i++) expect((await get(gw.url, k.key)).status).toBe(429);
    const usage = (await admin('GET', `/admin/keys/${k.id}/usage`)).json<Record<string, unknown>>();
    expect(usage).toMatchObject({
      id: k.id, tier: 'plan', limit: 100, remaining: 97,
      windows: [{ limit: 3, windowSeconds: 3600, remaining: 0, reset: expect.any(Number) }],
      quota: { limit: 50, used: 3, remaining: 47, reset: midnight() },
    });
  });

  test('a client that waits Retry-After is served, however often it was refused meanwhile', async () => {
    const k = await newKey({ tier: 'persecond' });
    // Start just after a whole second (the sliding windows are epoch-aligned), so the two
    // allowed and the refusals fall in one second and the retry is half a second into the next.
    await sleep(1000 - (Date.now() % 1000) + 20);
    let refused: HttpResult | undefined;
    for (let i = 0; i < 6 && refused === undefined; i++) {
      const r = await get(gw.url, k.key);
      if (r.status === 429) refused = r;
    }
    if (refused === undefined) throw new Error('never refused');
    expect(refused.json()).toMatchObject({ error: 'rate_limited', limit: 2 });
    const wait = Number(refused.headers['retry-after']);
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(2);
    const until = Date.now() + wait * 1000;
    // Refused again and again meanwhile: none of it counts.
    for (let i = 0; i < 5; i++) expect((await get(gw.url, k.key)).status).toBe(429);
    await sleep(Math.max(0, until - Date.now()) + 30);
    expect((await get(gw.url, k.key)).status).toBe(200);
  });

  test('refused by the quota: 429 quota_exceeded with period, and retryAfter = seconds to the reset', async () => {
    const k = await newKey({ tier: 'daily' });
    for (let i = 0; i < 3; i++) expect((await get(gw.url, k.key)).status).toBe(200);
    const refused = await get(gw.url, k.key);
    expect(refused.status).toBe(429);
    const body = refused.json<{ retryAfter: number }>();
    expect(body).toMatchObject({ error: 'quota_exceeded', tier: 'daily', limit: 3, period: 'day' });
    const toMidnight = midnight() - Date.now() / 1000;
    expect(body.retryAfter).toBeGreaterThanOrEqual(Math.floor(toMidnight) - 2);
    expect(body.retryAfter).toBeLessThanOrEqual(Math.ceil(toMidnight) + 2);
    expect(refused.headers['retry-after']).toBe(String(body.retryAfter));
    expect(refused.headers['x-quota-remaining']).toBe('0');
    expect(refused.headers['x-quota-reset']).toBe(String(midnight()));
    expect(refused.headers.ratelimit).toBe(`"daily-quota";r=0;t=${body.retryAfter}`);
  });

  test('a monthly quota anchored on the key resets on its creation day', async () => {
    const k = await newKey({ tier: 'monthly' });
    const r = await get(gw.url, k.key);
    expect(r.status).toBe(200);
    const day = new Date(k.createdAt).getUTCDate();
    expect(Number(r.headers['x-quota-reset'])).toBe(quotaPeriod('month', day, Date.now()).endMs / 1000);
  });

  test('refusals are counted by tier and by the counter that refused, never by key', async () => {
    const m = (await admin('GET', '/metrics')).body;
    expect(m).toMatch(/tollgate_limit_refusals_total\{tier="plan",counter="window"\} [1-9]/);
    expect(m).toMatch(/tollgate_limit_refusals_total\{tier="daily",counter="quota"\} [1-9]/);
    expect(m).not.toMatch(/tollgate_limit_refusals_total\{[^}]*(k_|key)/);
  });
});

describe('quota top-up and reset', () => {
  test('{"add":N} gives N more this period on every instance, {"reset":true} starts it afresh; both audited', async () => {
    const k = await newKey({ tier: 'daily' });
    for (let i = 0; i < 3; i++) expect((await get(gw.url, k.key)).status).toBe(200);
    expect((await get(gw.url, k.key)).status).toBe(429);
    const added = await admin('POST', `/admin/keys/${k.id}/quota`, { add: 2 });
    expect(added.status).toBe(200);
    expect(added.json()).toEqual({ limit: 5, used: 3, remaining: 2, reset: midnight() });
    // The denial the gateway held is gone: served at once.
    expect((await get(gw.url, k.key)).status).toBe(200);
    expect((await get(gw.url, k.key)).status).toBe(200);
    expect((await get(gw.url, k.key)).status).toBe(429);
    const reset = await admin('POST', `/admin/keys/${k.id}/quota`, { reset: true });
    expect(reset.json()).toEqual({ limit: 3, used: 0, remaining: 3, reset: midnight() });
    expect((await get(gw.url, k.key)).headers['x-quota-remaining']).toBe('2');
    await gw.waitForOutput(new RegExp(`"event":"key.quota_changed".*"keyId":"${k.id}"`));
  });

  test('a key without a quota: 400 and nothing changed', async () => {
    const k = await newKey({ tier: 'free' });
    const r = await admin('POST', `/admin/keys/${k.id}/quota`, { add: 1 });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: 'invalid_request', message: expect.stringMatching(/no quota/) });
  });
});

describe('identities and per-key limits', () => {
  test('keys with one identity share one set of counters', async () => {
    const identity = `acme-${Date.now()}`;
    const a = await newKey({ tier: 'daily', identity });
    const b = await newKey({ tier: 'daily', identity });
    expect(a.identity).toBe(identity);
    expect((await get(gw.url, a.key)).status).toBe(200);
    expect((await get(gw.url, a.key)).status).toBe(200);
    expect((await get(gw.url, b.key)).headers['x-quota-remaining']).toBe('0');
    expect((await get(gw.url, b.key)).status).toBe(429);
    expect((await get(gw.url, a.key)).status).toBe(429);
  });

  test('limits on create replace the tier\'s for that key; PATCH changes them, null removes them', async () => {
    const k = await newKey({ tier: 'daily', limits: { quota: { limit: 1, period: 'day' }, burst: 7 } });
    expect(k.limits).toEqual({ quota: { limit: 1, period: 'day' }, burst: 7 });
    const first = await get(gw.url, k.key);
    expect(first.headers['x-ratelimit-limit']).toBe('7');
    expect(first.headers['x-quota-limit']).toBe('1');
    expect((await get(gw.url, k.key)).json()).toMatchObject({ error: 'quota_exceeded', limit: 1 });

    const patched = await admin('PATCH', `/admin/keys/${k.id}`, { limits: { quota: null } });
    expect(patched.json()).toMatchObject({ limits: { quota: null } });
    const noQuota = await get(gw.url, k.key);
    expect(noQuota.status).toBe(200);
    expect(noQuota.headers['x-quota-limit']).toBeUndefined();

    const removed = await admin('PATCH', `/admin/keys/${k.id}`, { limits: null });
    expect(removed.json()).not.toHaveProperty('limits');
    // Back to the tier's quota of 3. It counted the first request and this one: not the
    // refused one, nor the one served while the key had no quota.
    const back = await get(gw.url, k.key);
    expect(back.headers['x-quota-limit']).toBe('3');
    expect(back.headers['x-ratelimit-limit']).toBe('100');
    expect(back.headers['x-quota-remaining']).toBe('1');
  });
});

describe('expiry and rotation grace (real clock)', () => {
  test('after expiresAt the key gets 401 key_expired, which never blocks the IP', async () => {
    const k = await newKey({ tier: 'free', expiresAt: new Date(Date.now() + 1500).toISOString() });
    expect((await get(gw.url, k.key)).status).toBe(200);
    await sleep(1700);
    for (let i = 0; i < 6; i++) {
      const r = await get(gw.url, k.key);
      expect(r.status).toBe(401);
      expect(r.json()).toMatchObject({ error: 'key_expired' });
    }
    // INVALID_KEY_LIMIT is 3 here: 6 expired requests blocked nothing.
    expect((await admin('GET', '/admin/blocks')).json()).toEqual({ blocks: [] });
    const renewed = await admin('PATCH', `/admin/keys/${k.id}`, { expiresAt: null });
    expect(renewed.status).toBe(200);
    expect((await get(gw.url, k.key)).status).toBe(200);
  });

  test('rotate with graceSeconds: the old key works until then, then 401; without grace it stops at once', async () => {
    const k = await newKey({ tier: 'free' });
    const rotated = await admin('POST', `/admin/keys/${k.id}/rotate`, { graceSeconds: 2 });
    expect(rotated.status).toBe(200);
    const next = rotated.json<{ key: string; previousKeyUntil: string }>();
    expect(Date.parse(next.previousKeyUntil) - Date.now()).toBeGreaterThan(1000);
    expect((await get(gw.url, k.key)).status).toBe(200);
    expect((await get(gw.url, next.key)).status).toBe(200);
    await sleep(Date.parse(next.previousKeyUntil) - Date.now() + 300);
    expect((await get(gw.url, k.key)).json()).toMatchObject({ error: 'invalid_api_key' });
    expect((await get(gw.url, next.key)).status).toBe(200);

    const again = (await admin('POST', `/admin/keys/${k.id}/rotate`)).json<{ key: string; previousKeyUntil?: string }>();
    expect(again.previousKeyUntil).toBeUndefined();
    expect((await get(gw.url, next.key)).status).toBe(401);
    expect((await get(gw.url, again.key)).status).toBe(200);
  });
});

describe('bad input: 400 with a reason, nothing changed', () => {
  test.each([
    [{ tier: 'free', identity: '' }, /identity/],
    [{ tier: 'free', identity: 'has space' }, /identity/],
    [{ tier: 'free', identity: 'x'.repeat(65) }, /identity/],
    [{ tier: 'free', expiresAt: 'tomorrow' }, /expiresAt/],
    [{ tier: 'free', expiresAt: '2027-01-01' }, /expiresAt/],
    [{ tier: 'free', expiresAt: 1234 }, /expiresAt/],
    [{ tier: 'free', limits: 5 }, /limits/],
    [{ tier: 'free', limits: { limit: 0 } }, /limits\.limit/],
    [{ tier: 'free', limits: { limit: 10, burst: 5 } }, /burst/],
    [{ tier: 'free', limits: { windows: {} } }, /windows/],
    [{ tier: 'free', limits: { windows: [{ limit: 1, windowSeconds: 0 }] } }, /windowSeconds/],
    [{ tier: 'free', limits: { windows: [{ limit: 1, windowSeconds: 5 }, { limit: 2, windowSeconds: 5 }] } }, /twice/],
    [{ tier: 'free', limits: { quota: { limit: 10, period: 'week' } } }, /period/],
    [{ tier: 'free', limits: { quota: { limit: 10, period: 'day', anchor: 'key' } } }, /monthly/],
    [{ tier: 'free', limits: { rate: 5 } }, /unknown field "rate"/],
  ])('POST /admin/keys %j', async (body, reason) => {
    const before = (await admin('GET', '/admin/keys?limit=1000')).json<{ keys: unknown[] }>().keys.length;
    const r = await admin('POST', '/admin/keys', body);
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: 'invalid_request', message: expect.stringMatching(reason) });
    expect((await admin('GET', '/admin/keys?limit=1000')).json<{ keys: unknown[] }>().keys.length).toBe(before);
  });

  test('PATCH, rotate and quota bodies', async () => {
    const k = await newKey({ tier: 'daily' });
    const record = (await admin('GET', `/admin/keys/${k.id}`)).json();
    const bad: Array<[string, string, unknown, RegExp]> = [
      ['PATCH', '', { identity: 'a/b' }, /identity/],
      ['PATCH', '', { expiresAt: '31/12/2027' }, /expiresAt/],
      ['PATCH', '', { limits: { quota: { limit: -1, period: 'day' } } }, /quota\.limit/],
      ['POST', '/rotate', { graceSeconds: -1 }, /graceSeconds/],
      ['POST', '/rotate', { graceSeconds: 604801 }, /graceSeconds/],
      ['POST', '/rotate', { graceSeconds: '10' }, /graceSeconds/],
      ['POST', '/rotate', { grace: 10 }, /unknown field/],
      ['POST', '/quota', { add: 0 }, /add/],
      ['POST', '/quota', { add: 1.5 }, /add/],
      ['POST', '/quota', { reset: false }, /reset/],
      ['POST', '/quota', { reset: true, add: 1 }, /either/],
      ['POST', '/quota', {}, /reset/],
    ];
    for (const [method, suffix, body, reason] of bad) {
      const r = await admin(method, `/admin/keys/${k.id}${suffix}`, body);
      expect({ method, suffix, body, status: r.status, error: r.json<{ error: string }>().error }).toEqual({ method, suffix, body, status: 400, error: 'invalid_request' });
      expect(r.json<{ message: string }>().message).toMatch(reason);
    }
    expect((await admin('GET', `/admin/keys/${k.id}`)).json()).toEqual(record);
    expect((await get(gw.url, k.key)).status).toBe(200);
    expect((await admin('GET', `/admin/keys/${k.id}/usage`)).json()).toMatchObject({ quota: { used: 1, remaining: 2 } });
  });

  test('a tiers file with bad windows or quota stops startup with every reason (exit 2)', async () => {
    const file = writeTiers({ ...TIERS, tiers: { ...TIERS.tiers, bad: { limit: 5, windows: [{ limit: 0, windowSeconds: 100000 }], quota: { limit: 5, period: 'year' } } } });
    const r = await runGatewayToExit({ env: { UPSTREAM_URL: upstream.url, KEYS_FILE: '', TIERS_FILE: file } });
    expect(r.code).toBe(2);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/windows\[0\]\.limit/);
    expect(out).toMatch(/windows\[0\]\.windowSeconds/);
    expect(out).toMatch(/quota\.period/);
  });
});

describe('key changes reach every instance within 1 s', () => {
  let b: GatewayProcess;
  beforeAll(async () => {
    b = await startGateway({
      env: { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, KEYS_FILE: '', TIERS_FILE: writeTiers(TIERS), RATE_LIMIT_DRAFT_HEADERS: 'true' },
    });
  });
  afterAll(async () => {
    await b?.stop();
  });

  async function within1s(what: string, check: () => Promise<boolean>): Promise<void> {
    const started = Date.now();
    while (!(await check())) {
      if (Date.now() - started > 1000) throw new Error(`${what}: not within 1 s`);
      await sleep(25);
    }
  }

  test('a quota top-up on one instance frees the denial another instance holds', async () => {
    const k = await newKey({ tier: 'daily' });
    for (let i = 0; i < 3; i++) expect((await get(b.url, k.key)).status).toBe(200);
    expect((await get(b.url, k.key)).status).toBe(429); // b now holds this denial until 00:00 UTC
    expect((await admin('POST', `/admin/keys/${k.id}/quota`, { add: 1 })).status).toBe(200);
    await within1s('top-up seen by b', async () => (await get(b.url, k.key)).status === 200);
  });

  test('limits and expiry set on one instance are in force on the other', async () => {
    const k = await newKey({ tier: 'free' });
    expect((await get(b.url, k.key)).headers['x-ratelimit-limit']).toBe('20');
    await admin('PATCH', `/admin/keys/${k.id}`, { limits: { burst: 30, quota: { limit: 100, period: 'day' } } });
    await within1s('limits seen by b', async () => (await get(b.url, k.key)).headers['x-quota-limit'] === '100');
    await admin('PATCH', `/admin/keys/${k.id}`, { expiresAt: new Date(Date.now() - 1000).toISOString() });
    await within1s('expiry seen by b', async () => (await get(b.url, k.key)).status === 401);
  });
});

describe('a reload that removes a window or the quota keeps the counts of the others', () => {
  let g: GatewayProcess;
  let file: string;
  const tiers = (windows: boolean, quota: boolean) => ({
    windowSeconds: 3600,
    tiers: {
      r: {
        limit: 10,
        ...(windows ? { windows: [{ limit: 4, windowSeconds: 86400 }] } : {}),
        ...(quota ? { quota: { limit: 6, period: 'day' } } : {}),
      },
    },
  });
  beforeAll(async () => {
    file = writeTiers(tiers(true, true));
    g = await startGateway({ env: { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, ...EXACT, KEYS_FILE: '', TIERS_FILE: file } });
  });
  afterAll(async () => {
    await g?.stop();
  });

  test('window removed, then quota removed: main window and quota counts carry on', async () => {
    const k = await newKey({ tier: 'r' }, g);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await get(g.url, k.key)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429]);

    writeFileSync(file, JSON.stringify(tiers(false, true)));
    expect((await admin('POST', '/admin/tiers/reload', undefined, g)).status).toBe(200);
    const afterWindow: HttpResult[] = [];
    for (let i = 0; i < 3; i++) afterWindow.push(await get(g.url, k.key));
    // The quota had 4 counted: 2 more, then quota_exceeded; the main window saw 6.
    expect(afterWindow.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(afterWindow[1].headers['x-ratelimit-remaining']).toBe('4');
    expect(afterWindow[2].json()).toMatchObject({ error: 'quota_exceeded' });

    writeFileSync(file, JSON.stringify(tiers(false, false)));
    expect((await admin('POST', '/admin/tiers/reload', undefined, g)).status).toBe(200);
    const afterQuota: number[] = [];
    for (let i = 0; i < 5; i++) afterQuota.push((await get(g.url, k.key)).status);
    expect(afterQuota).toEqual([200, 200, 200, 200, 429]);
  });
});
