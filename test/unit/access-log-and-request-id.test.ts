import { AccessLog } from '../../src/gateway/accessLog';
import { JsonLineBatch } from '../../src/observability/jsonLineBatch';
import { RequestContext } from '../../src/gateway/requestContext';
import { RequestIds, isValidRequestId } from '../../src/gateway/requestId';
import { RouteMatcher } from '../../src/routes/matcher';
import { parseRoutes } from '../../src/routes/routes';

/** An access log whose lines are read back as strings (each with its "\n"), the batch flushed first. */
function collect(sample = 1, random = () => 0.5): { log: AccessLog; lines: () => string[] } {
  const chunks: Buffer[] = [];
  const batch = new JsonLineBatch((bytes) => chunks.push(Buffer.from(bytes)));
  const log = new AccessLog({ lines: batch, sample, random });
  return {
    log,
    lines: () => {
      batch.flush();
      return Buffer.concat(chunks).toString('utf8').split(/(?<=\n)/).filter((l) => l !== '');
    },
  };
}

describe('access log lines', () => {
  test('one JSON line with the SPEC §10 fields, no query, escaped client strings', () => {
    const { log, lines } = collect();
    const ctx = new RequestContext('id-"quoted"\\', performance.now() - 5);
    ctx.ip = '203.0.113.7';
    ctx.tier = 'pro';
    ctx.keyId = 'k_1';
    ctx.upstreamMs = 1.23456;
    const parsed = parseRoutes({ routes: [{ name: 'search', match: { path: '/v1/search*' } }] }, new Set(['pro']));
    if (!parsed.ok) throw new Error(parsed.reasons.join());
    ctx.route = new RouteMatcher(parsed.routes).match('GET', '/v1/search');
    log.write(ctx, 'GET', '/v1/search/"x"?api_key=secret&q=1', 200, 'allowed', 12.3456);
    log.write(ctx, 'GET', '/again', 200, 'allowed', 5);
    expect(lines()).toHaveLength(1);
    expect(lines()[0].endsWith('\n')).toBe(true);
    const line = JSON.parse(lines()[0]) as Record<string, unknown>;
    expect(line).toMatchObject({
      access: true, requestId: 'id-"quoted"\\', method: 'GET', path: '/v1/search/"x"', status: 200, route: 'search',
      tier: 'pro', keyId: 'k_1', clientIp: '203.0.113.7', upstreamMs: 1.235, outcome: 'allowed',
    });
    expect(typeof line.durationMs).toBe('number');
    // The duration the pipeline measured once (and gave the duration metric), to the µs.
    expect(line.durationMs).toBe(12.346);
    expect(String(line.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Math.abs(Date.parse(String(line.time)) - Date.now())).toBeLessThan(1000);
    expect(lines()[0]).not.toContain('secret');
  });

  test('no route, no key, not proxied: nulls; a shadow refusal is marked', () => {
    const { log, lines } = collect();
    const ctx = new RequestContext('r1', performance.now());
    ctx.shadowRefused = 'rate';
    log.write(ctx, 'POST', '/x', 401, 'unauthorized', 5);
    expect(JSON.parse(lines()[0])).toMatchObject({ route: null, keyId: null, upstreamMs: null, tier: 'none', shadowRefused: 'rate' });
  });

  test('milliseconds to 3 decimals; a path with control, non-ASCII or escaped characters is valid JSON and intact', () => {
    const cases: Array<[number, number]> = [[0, 0], [0.0004, 0], [2.5, 2.5], [12.0456, 12.046], [3.001, 3.001], [0.07, 0.07], [1999.9996, 2000]];
    for (const [given, logged] of cases) {
      const { log, lines } = collect();
      const ctx = new RequestContext('r', performance.now());
      ctx.upstreamMs = given;
      log.write(ctx, 'GET', '/', 200, 'allowed', 5);
      expect((JSON.parse(lines()[0]) as { upstreamMs: number }).upstreamMs).toBe(logged);
    }
    const { log, lines } = collect();
    const path = '/caf\u00e9/\u0001tab\t/"q"/back\\slash/\u2028';
    log.write(new RequestContext('r', performance.now()), 'GET', `${path}?k=1`, 200, 'allowed', 5);
    expect((JSON.parse(lines()[0]) as { path: string }).path).toBe(path);
    expect(lines()[0].split('\n')).toHaveLength(2);
  });

  test('ACCESS_LOG_SAMPLE drops only 2xx/3xx lines', () => {
    const { log, lines } = collect(0.25, () => 0.5);
    for (const status of [200, 204, 301, 101, 401, 429, 499, 502]) log.write(new RequestContext(`s${status}`, 0), 'GET', '/', status, 'x', 5);
    expect(lines().map((l) => (JSON.parse(l) as { status: number }).status)).toEqual([101, 401, 429, 499, 502]);
    const kept = collect(0.25, () => 0.1);
    kept.log.write(new RequestContext('k', 0), 'GET', '/', 200, 'allowed', 5);
    expect(kept.lines()).toHaveLength(1);
  });
});

describe('request ids', () => {
  test('a client id of 1-128 visible ASCII is kept; anything else is replaced', () => {
    const ids = new RequestIds(Buffer.alloc(9, 1));
    expect(ids.of('abc-123')).toBe('abc-123');
    expect(ids.of('x'.repeat(128))).toBe('x'.repeat(128));
    for (const bad of [undefined, '', 'x'.repeat(129), 'a b', 'tab\there', 'ümlaut', ['a', 'b']]) {
      expect(ids.of(bad)).toMatch(/^AQEBAQEBAQEB-[0-9a-z]+$/);
    }
    expect(isValidRequestId('~!')).toBe(true);
  });

  test('made ids are unique within a process and differ between processes', () => {
    const a = new RequestIds();
    const b = new RequestIds();
    const seen = new Set<string>();
    for (let i = 0; i < 10000; i++) seen.add(a.next());
    expect(seen.size).toBe(10000);
    expect(a.next().slice(0, 12)).not.toBe(b.next().slice(0, 12));
  });
});
