import { RouteMatcher, pathOf } from '../../src/routes/matcher';
import { DEFAULT_ROUTE, normalisePath, parseRoutes, routesMissingTiers, routesToJson, type Route } from '../../src/routes/routes';

const TIERS = new Set(['free', 'pro', 'enterprise', 'anonymous']);

function compile(routes: unknown[]): RouteMatcher {
  const r = parseRoutes({ routes }, TIERS);
  if (!r.ok) throw new Error(r.reasons.join('\n'));
  return new RouteMatcher(r.routes);
}

function name(m: RouteMatcher, method: string, url: string): string {
  const r: Route = m.match(method, url);
  return r === DEFAULT_ROUTE ? '(default)' : r.name;
}

describe('route matching', () => {
  const m = compile([
    { name: 'health', match: { path: '/health' }, auth: 'none' },
    { name: 'catalog-get', match: { methods: ['GET'], path: '/v1/catalog/*' }, auth: 'optional' },
    { name: 'search', match: { path: '/v1/search*' }, cost: 5 },
    { name: 'jobs-post', match: { methods: ['POST'], path: '/v1/jobs' }, tiers: ['pro'] },
    { name: 'jobs-any', match: { path: '/v1/jobs' } },
    { name: 'v1', match: { path: '/v1/*' } },
    { name: 'catalog-special', match: { path: '/v1/catalog/special' } },
  ]);

  test('exact, prefix and methods', () => {
    expect(name(m, 'GET', '/health')).toBe('health');
    expect(name(m, 'POST', '/health')).toBe('health');
    expect(name(m, 'GET', '/healthz')).toBe('(default)');
    expect(name(m, 'GET', '/v1/catalog/items/1')).toBe('catalog-get');
    expect(name(m, 'PUT', '/v1/catalog/items/1')).toBe('v1');
    expect(name(m, 'GET', '/v1/search')).toBe('search');
    expect(name(m, 'GET', '/v1/searchable')).toBe('search');
    expect(name(m, 'POST', '/v1/jobs')).toBe('jobs-post');
    expect(name(m, 'GET', '/v1/jobs')).toBe('jobs-any');
    expect(name(m, 'PROPFIND', '/v1/jobs')).toBe('jobs-any');
    expect(name(m, 'GET', '/v2/jobs')).toBe('(default)');
  });

  test('first route in file order wins, also an earlier prefix over a later exact route', () => {
    expect(name(m, 'GET', '/v1/catalog/special')).toBe('catalog-get');
    expect(name(m, 'DELETE', '/v1/catalog/special')).toBe('v1');
    const n = compile([
      { name: 'exact-first', match: { path: '/a/b' } },
      { name: 'prefix-later', match: { path: '/a/*' } },
      { name: 'longer-prefix-latest', match: { path: '/a/b*' } },
    ]);
    expect(name(n, 'GET', '/a/b')).toBe('exact-first');
    expect(name(n, 'GET', '/a/bc')).toBe('prefix-later');
  });

  test('the query never takes part', () => {
    expect(name(m, 'GET', '/health?x=1')).toBe('health');
    expect(name(m, 'GET', '/health#frag')).toBe('health');
    expect(name(m, 'GET', '/v1/jobs?/v1/search')).toBe('jobs-any');
    expect(name(m, 'GET', '/other?path=/health')).toBe('(default)');
  });

  test('a trailing slash, %2F, dot segments and doubled slashes never step around a route', () => {
    expect(name(m, 'POST', '/v1/jobs/')).toBe('jobs-post');
    expect(name(m, 'POST', '/v1/jobs%2F')).toBe('jobs-post');
    expect(name(m, 'POST', '/v1%2Fjobs')).toBe('jobs-post');
    expect(name(m, 'POST', '/v1/%6Aobs')).toBe('jobs-post');
    expect(name(m, 'POST', '/v1//jobs')).toBe('jobs-post');
    expect(name(m, 'POST', '/v1/x/../jobs')).toBe('jobs-post');
    expect(name(m, 'POST', '/v1/./jobs')).toBe('jobs-post');
    expect(name(m, 'GET', '/v1/catalog')).toBe('catalog-get');
    expect(name(m, 'GET', '/v1/catalog/')).toBe('catalog-get');
    expect(name(m, 'GET', '/v1%2Fcatalog%2Fx')).toBe('catalog-get');
    expect(name(m, 'GET', '/v1/catalog%2F..%2F..%2Fadmin')).toBe('(default)');
    expect(name(m, 'GET', '/v1/catalog/%zz')).toBe('catalog-get');
  });

  test('absolute-form targets are matched by their path', () => {
    expect(name(m, 'GET', 'http://example.com/health?x')).toBe('health');
  });

  test('no routes: every request meets the defaults', () => {
    expect(new RouteMatcher([]).match('GET', '/x')).toBe(DEFAULT_ROUTE);
    expect(DEFAULT_ROUTE.cost).toBe(1);
    expect(DEFAULT_ROUTE.auth).toBe('required');
  });

  test('100 routes: the last one is found, and the answer equals a scan in file order', () => {
    const defs: unknown[] = [];
    for (let i = 0; i < 99; i++) defs.push({ name: `r${i}`, match: { path: i % 2 ? `/svc${i}/*` : `/svc${i}/item` } });
    defs.push({ name: 'last', match: { methods: ['GET'], path: '/target/*' } });
    const big = compile(defs);
    expect(name(big, 'GET', '/target/x/y')).toBe('last');
    expect(name(big, 'POST', '/target/x/y')).toBe('(default)');
    expect(name(big, 'GET', '/svc3/anything')).toBe('r3');
    expect(name(big, 'GET', '/svc4/item')).toBe('r4');
    expect(name(big, 'GET', '/svc4/other')).toBe('(default)');
  });

  test('pathOf and normalisePath', () => {
    expect(pathOf('/a/b?c=d')).toBe('/a/b');
    expect(normalisePath('/')).toBe('/');
    expect(normalisePath('//')).toBe('/');
    expect(normalisePath('/a/b/')).toBe('/a/b');
    expect(normalisePath('/a/../../b')).toBe('/b');
  });
});

describe('routes file validation', () => {
  function reasons(doc: unknown): string {
    const r = parseRoutes(doc, TIERS);
    if (r.ok) throw new Error('expected the file to be rejected');
    return r.reasons.join('\n');
  }

  test('the shipped empty file and the SPEC example are valid', () => {
    expect(parseRoutes({ routes: [] }, TIERS).ok).toBe(true);
    const spec = { routes: [
      { name: 'health', match: { path: '/health' }, auth: 'none' },
      { name: 'catalog', match: { methods: ['GET'], path: '/v1/catalog/*' }, auth: 'optional' },
      { name: 'search', match: { path: '/v1/search*' }, cost: 5 },
      { name: 'jobs', match: { methods: ['POST'], path: '/v1/jobs' }, tiers: ['pro', 'enterprise'], limits: { pro: { limit: 10, windowSeconds: 60 } }, upstream: 'http://jobs.internal:8081' },
    ] };
    const r = parseRoutes(spec, TIERS);
    expect(r.ok).toBe(true);
    expect(routesToJson(r.ok ? r.routes : []).routes).toHaveLength(4);
  });

  test('every reason is given at once', () => {
    const text = reasons({
      extra: 1,
      routes: [
        { name: 'a', match: { path: '/a', host: 'x' }, colour: 'red' },
        { name: 'b', match: { methods: ['get', 'FETCH'], path: '/b' } },
        { name: 'c', match: { path: '/c' }, cost: 1001 },
        { name: 'd', match: { path: '/d' }, cost: -1 },
        { name: 'e', match: { path: '/e' }, cost: 1.5 },
        { name: 'f', match: { path: '/f' }, tiers: ['gold'] },
        { name: 'g', match: { path: '/g' }, limits: { platinum: { limit: 5 } } },
        { name: 'h', match: { path: '/h' }, limits: { pro: { limit: 0, windowSeconds: 0, burst: 3 } } },
        { name: 'i', match: { path: '/i' }, upstream: 'ftp://x' },
        { name: 'j', match: { path: '/j' }, upstream: 'not a url' },
        { name: 'k', match: { path: '/k' }, upstream: 'http://u:p@x' },
        { name: 'has space', match: { path: '/l' } },
        { name: 'a', match: { path: '/m' } },
        { name: 'n', match: { path: 'n' } },
        { name: 'o', match: { path: '/o/*/p' } },
        { name: 'p', match: { path: '/p?x=1' } },
        { name: 'q', match: { path: '/q/' } },
        { name: 'r', match: { path: '/r' }, auth: 'maybe', mode: 'loud' },
        'not an object',
      ],
    });
    for (const expected of [
      /the file: unknown field "extra"/,
      /route 0 \("a"\): unknown field "colour"/,
      /route 0 \("a"\) match: unknown field "host"/,
      /"get" is not one of/,
      /"FETCH" is not one of/,
      /route 2 \("c"\): cost must be a whole number 0-1000; got 1001/,
      /route 3 \("d"\): cost .* got -1/,
      /route 4 \("e"\): cost .* got 1.5/,
      /route 5 \("f"\): tiers: "gold" is not a tier in force/,
      /route 6 \("g"\) limits.platinum: "platinum" is not a tier in force/,
      /limits.pro: unknown field "burst"/,
      /limits.pro: limit must be/,
      /limits.pro: windowSeconds must be/,
      /route 8 \("i"\): upstream must be an http/,
      /route 9 \("j"\): upstream must be an http/,
      /route 10 \("k"\): upstream must hold no user/,
      /route 11: name must be/,
      /route 12 \("a"\): the name is used by an earlier route/,
      /route 13 \("n"\): match.path must start with "\/"/,
      /route 14 \("o"\): match.path may hold "\*" only/,
      /route 15 \("p"\): match.path must hold no query/,
      /route 16 \("q"\): match.path must be normalised/,
      /route 17 \("r"\): auth must be one of/,
      /route 17 \("r"\): mode must be one of/,
      /route 18: must be an object/,
    ]) expect(text).toMatch(expected);
  });

  test('not an object, no routes array', () => {
    expect(reasons([])).toMatch(/JSON object/);
    expect(reasons({})).toMatch(/routes must be an array/);
  });
});

describe('routesMissingTiers (a tiers reload against the routes in force)', () => {
  const tiers = new Set(['free', 'pro', 'anonymous']);
  const parsed = parseRoutes({ routes: [
    { name: 'open', match: { path: '/open' }, auth: 'none' },
    { name: 'public', match: { path: '/public*' }, auth: 'optional', limits: { anonymous: { limit: 2 }, pro: { limit: 9 } } },
    { name: 'reports', match: { path: '/reports' }, tiers: ['pro', 'anonymous'] },
  ] }, tiers);
  if (!parsed.ok) throw new Error(parsed.reasons.join());

  test('a new set with every named tier fits (tiers the routes never name may go)', () => {
    expect(routesMissingTiers(parsed.routes, new Set(['pro', 'anonymous']))).toEqual([]);
  });

  test('each tier a route allows or limits that the new set lacks is a reason', () => {
    expect(routesMissingTiers(parsed.routes, new Set(['free']))).toEqual([
      'route "public" in force limits tier "anonymous" (limits), which the new tiers file does not define',
      'route "public" in force limits tier "pro" (limits), which the new tiers file does not define',
      'route "reports" in force allows tier "pro" (tiers), which the new tiers file does not define',
      'route "reports" in force allows tier "anonymous" (tiers), which the new tiers file does not define',
    ]);
  });
});
