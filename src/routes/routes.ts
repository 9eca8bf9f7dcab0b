/**
 * Route definitions (SPEC §10): parsing and validation of the routes file, pure.
 * Every reason a file is invalid is collected, so an operator fixes it in one pass.
 */

export type RouteAuth = 'required' | 'optional' | 'none';
export type LimitMode = 'enforce' | 'shadow';

/** A per-tier limit of one route: `limit` requests per `windowSeconds`, per key (or identity). */
export interface RouteLimit {
  /** The route's name (the counter's name and store key). */
  readonly name: string;
  readonly limit: number;
  readonly windowSeconds: number;
}

export interface Route {
  readonly name: string;
  /** Upper-case methods; null = every method. */
  readonly methods: ReadonlySet<string> | null;
  /** Without the trailing `*` for a prefix route. */
  readonly path: string;
  readonly prefix: boolean;
  /** How many requests one of this route counts as (0 = not counted). */
  readonly cost: number;
  readonly auth: RouteAuth;
  /** Tiers allowed; null = every tier. */
  readonly tiers: ReadonlySet<string> | null;
  readonly limits: ReadonlyMap<string, RouteLimit>;
  /** Origin + optional path prefix; null = UPSTREAM_URL. */
  readonly upstream: string | null;
  /** null = the tier's or LIMIT_MODE's. */
  readonly mode: LimitMode | null;
  /** Position in the file: the first route that fits wins. */
  readonly index: number;
}

/** What a request meets when no route fits (SPEC §10: cost 1, key required, UPSTREAM_URL). */
export const DEFAULT_ROUTE: Route = Object.freeze({
  name: '', methods: null, path: '/', prefix: true, cost: 1, auth: 'required', tiers: null,
  limits: new Map<string, RouteLimit>(), upstream: null, mode: null, index: -1,
});

export type RoutesParseResult = { ok: true; routes: readonly Route[] } | { ok: false; reasons: string[] };

export const ROUTE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'] as const;
const METHOD_SET = new Set<string>(METHODS);
const AUTHS: readonly RouteAuth[] = ['required', 'optional', 'none'];
const MODES: readonly LimitMode[] = ['enforce', 'shadow'];
const ROUTE_FIELDS = ['name', 'match', 'cost', 'auth', 'tiers', 'limits', 'upstream', 'mode'];
const MATCH_FIELDS = ['methods', 'path'];
const LIMIT_FIELDS = ['limit', 'windowSeconds'];
export const MAX_COST = 1000;
const MAX_WINDOW_S = 86_400;
const MAX_ROUTES = 10_000;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The upstreams the routes send to besides UPSTREAM_URL (whose pools a reload keeps). */
export function routeUpstreams(routes: readonly Route[]): Set<string> {
  const out = new Set<string>();
  for (const r of routes) if (r.upstream !== null) out.add(r.upstream);
  return out;
}

/**
 * Why a new tier set cannot replace the one in force while these routes are: every tier a
 * route allows (`tiers`) or limits (`limits`) that the new set lacks. Empty when it fits.
 * A tiers reload is refused on these, as a routes reload naming a missing tier is.
 */
export function routesMissingTiers(routes: readonly Route[], tierNames: ReadonlySet<string>): string[] {
  const reasons: string[] = [];
  for (const r of routes) {
    for (const t of r.tiers ?? []) if (!tierNames.has(t)) reasons.push(`route "${r.name}" in force allows tier "${t}" (tiers), which the new tiers file does not define`);
    for (const t of r.limits.keys()) if (!tierNames.has(t)) reasons.push(`route "${r.name}" in force limits tier "${t}" (limits), which the new tiers file does not define`);
  }
  return reasons;
}

function whole(v: unknown, min: number, max: number): v is number {
  return Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
}

function unknownFields(where: string, obj: Record<string, unknown>, allowed: readonly string[], reasons: string[]): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) reasons.push(`${where}: unknown field "${k}" (allowed: ${allowed.join(', ')})`);
}

/**
 * Validates a parsed routes document against the tiers in force (`tierNames`), collecting
 * every reason it is invalid.
 */
export function parseRoutes(doc: unknown, tierNames: ReadonlySet<string>): RoutesParseResult {
  const reasons: string[] = [];
  if (!isObject(doc)) return { ok: false, reasons: ['the file must hold a JSON object {"routes":[…]}'] };
  unknownFields('the file', doc, ['routes'], reasons);
  if (!Array.isArray(doc.routes)) {
    reasons.push('routes must be an array');
    return { ok: false, reasons };
  }
  if (doc.routes.length > MAX_ROUTES) reasons.push(`at most ${MAX_ROUTES} routes; got ${doc.routes.length}`);
  const routes: Route[] = [];
  const names = new Set<string>();
  doc.routes.forEach((def: unknown, i: number) => {
    const name = isObject(def) ? def.name : undefined;
    if (typeof name === 'string') {
      if (names.has(name)) reasons.push(`route ${i} ("${name}"): the name is used by an earlier route`);
      names.add(name);
    }
    const route = parseRoute(def, i, tierNames, reasons);
    if (route !== null) routes.push(route);
  });
  if (reasons.length > 0) return { ok: false, reasons };
  return { ok: true, routes };
}

function parseRoute(def: unknown, i: number, tierNames: ReadonlySet<string>, reasons: string[]): Route | null {
  if (!isObject(def)) {
    reasons.push(`route ${i}: must be an object`);
    return null;
  }
  const nameOk = typeof def.name === 'string' && ROUTE_NAME.test(def.name);
  const where = nameOk ? `route ${i} ("${def.name as string}")` : `route ${i}`;
  const before = reasons.length;
  if (!nameOk) reasons.push(`${where}: name must be 1-64 of [A-Za-z0-9_.-]; got ${JSON.stringify(def.name)}`);
  unknownFields(where, def, ROUTE_FIELDS, reasons);

  let methods: Set<string> | null = null;
  let path = '';
  let prefix = false;
  if (!isObject(def.match)) {
    reasons.push(`${where}: match must be an object with "path" (and optional "methods")`);
  } else {
    const m = def.match;
    unknownFields(`${where} match`, m, MATCH_FIELDS, reasons);
    if (m.methods !== undefined) {
      if (!Array.isArray(m.methods) || m.methods.length === 0) {
        reasons.push(`${where}: match.methods must be a non-empty array of ${METHODS.join(', ')}`);
      } else {
        methods = new Set();
        for (const method of m.methods) {
          if (typeof method !== 'string' || !METHOD_SET.has(method)) reasons.push(`${where}: match.methods: ${JSON.stringify(method)} is not one of ${METHODS.join(', ')}`);
          else methods.add(method);
        }
      }
    }
    const p = parsePath(m.path);
    if (typeof p === 'string') reasons.push(`${where}: match.path ${p}; got ${JSON.stringify(m.path)}`);
    else ({ path, prefix } = p);
  }

  const cost = def.cost ?? 1;
  if (!whole(cost, 0, MAX_COST)) reasons.push(`${where}: cost must be a whole number 0-${MAX_COST}; got ${JSON.stringify(def.cost)}`);
  const auth = def.auth ?? 'required';
  if (!AUTHS.includes(auth as RouteAuth)) reasons.push(`${where}: auth must be one of ${AUTHS.join(', ')}; got ${JSON.stringify(def.auth)}`);
  const mode = def.mode ?? null;
  if (mode !== null && !MODES.includes(mode as LimitMode)) reasons.push(`${where}: mode must be one of ${MODES.join(', ')}; got ${JSON.stringify(def.mode)}`);

  let tiers: Set<string> | null = null;
  if (def.tiers !== undefined) {
    if (!Array.isArray(def.tiers) || def.tiers.length === 0) {
      reasons.push(`${where}: tiers must be a non-empty array of tier names`);
    } else {
      tiers = new Set();
      for (const t of def.tiers) {
        if (typeof t !== 'string' || !tierNames.has(t)) reasons.push(`${where}: tiers: ${JSON.stringify(t)} is not a tier in force (${[...tierNames].join(', ')})`);
        else tiers.add(t);
      }
    }
  }

  const limits = new Map<string, RouteLimit>();
  if (def.limits !== undefined) {
    if (!isObject(def.limits)) {
      reasons.push(`${where}: limits must be an object of tier name → {"limit","windowSeconds"}`);
    } else {
      for (const [tier, l] of Object.entries(def.limits)) {
        const lw = `${where} limits.${tier}`;
        if (!tierNames.has(tier)) reasons.push(`${lw}: "${tier}" is not a tier in force (${[...tierNames].join(', ')})`);
        if (!isObject(l)) {
          reasons.push(`${lw}: must be an object {"limit","windowSeconds"}`);
          continue;
        }
        unknownFields(lw, l, LIMIT_FIELDS, reasons);
        const okLimit = whole(l.limit, 1, 1_000_000_000);
        const windowSeconds = l.windowSeconds ?? 60;
        const okWindow = whole(windowSeconds, 1, MAX_WINDOW_S);
        if (!okLimit) reasons.push(`${lw}: limit must be a whole number of at least 1; got ${JSON.stringify(l.limit)}`);
        if (!okWindow) reasons.push(`${lw}: windowSeconds must be a whole number 1-${MAX_WINDOW_S}; got ${JSON.stringify(l.windowSeconds)}`);
        if (okLimit && okWindow) limits.set(tier, { name: nameOk ? def.name as string : '', limit: l.limit as number, windowSeconds: windowSeconds as number });
      }
    }
  }

  let upstream: string | null = null;
  if (def.upstream !== undefined) {
    const u = parseUpstream(def.upstream);
    if (u.startsWith('must')) reasons.push(`${where}: upstream ${u}; got ${JSON.stringify(def.upstream)}`);
    else upstream = u;
  }

  if (reasons.length > before) return null;
  return {
    name: def.name as string, methods, path, prefix, cost: cost as number, auth: auth as RouteAuth, tiers, limits,
    upstream, mode: mode as LimitMode | null, index: i,
  };
}

/** `{path, prefix}`, or the reason the path is invalid. */
function parsePath(v: unknown): { path: string; prefix: boolean } | string {
  if (typeof v !== 'string' || v.length === 0) return 'must be a string starting with "/"';
  if (v.charCodeAt(0) !== 0x2f) return 'must start with "/"';
  if (v.length > 2048) return 'must be at most 2048 characters';
  if (/[?#\s]/.test(v)) return 'must hold no query, fragment or white space';
  const star = v.indexOf('*');
  if (star !== -1 && star !== v.length - 1) return 'may hold "*" only as its last character (a prefix)';
  const prefix = star !== -1;
  const path = prefix ? v.slice(0, -1) : v;
  // Routes are matched against the normalised request path: a route written in another
  // form could never match.
  if (normalisePath(path === '' ? '/' : path, prefix) !== (path === '' ? '/' : path)) {
    return 'must be normalised (no "%XX" escapes, "." or ".." segments, "//" or trailing "/" except in a prefix)';
  }
  return { path: path === '' ? '/' : path, prefix };
}

/** An http(s) origin with an optional path, as the upstream client takes it; else the reason. */
function parseUpstream(v: unknown): string {
  if (typeof v !== 'string') return 'must be an http:// or https:// URL';
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'must be an http:// or https:// URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (u.username !== '' || u.password !== '') return 'must hold no user or password';
  if (u.search !== '' || u.hash !== '') return 'must hold no query or fragment';
  return u.origin + u.pathname.replace(/\/+$/, '');
}

const SLASH = 0x2f;

/**
 * The path a route is matched against, so that an encoding the upstream would undo cannot
 * step around a route (`/v1/jobs%2F`, `/v1/jobs/`, `/v1//jobs`, `/v1/x/../jobs` all meet
 * the route of `/v1/jobs`): `%XX` escapes decoded (invalid ones kept), `.` and `..`
 * segments resolved, repeated slashes collapsed, and a trailing slash dropped unless the
 * path is "/" or `keepTrailing`. The query must already be cut off. The common path has
 * none of these and costs three scans.
 */
export function normalisePath(path: string, keepTrailing = false): string {
  let p = path;
  if (p.indexOf('%') !== -1) p = decodePercent(p);
  if (p.indexOf('/.') !== -1 || p.indexOf('//') !== -1) p = resolveSegments(p);
  if (!keepTrailing && p.length > 1 && p.charCodeAt(p.length - 1) === SLASH) {
    let end = p.length - 1;
    while (end > 1 && p.charCodeAt(end - 1) === SLASH) end -= 1;
    p = p.slice(0, end);
  }
  return p;
}

function decodePercent(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    // A stray "%" somewhere: decode the valid escapes one by one.
    return p.replace(/%[0-9A-Fa-f]{2}/g, (e) => String.fromCharCode(parseInt(e.slice(1), 16)));
  }
}

function resolveSegments(p: string): string {
  const out: string[] = [];
  const parts = p.split('/');
  for (let i = 1; i < parts.length; i++) {
    const s = parts[i];
    if (s === '' || s === '.') {
      if (i === parts.length - 1) out.push('');
      continue;
    }
    if (s === '..') {
      out.pop();
      if (i === parts.length - 1) out.push('');
      continue;
    }
    out.push(s);
  }
  return '/' + out.join('/');
}

/** The shape `GET /admin/routes` shows: the routes in force, as a file would say them. */
export function routesToJson(routes: readonly Route[]): Record<string, unknown> {
  return {
    routes: routes.map((r) => ({
      name: r.name,
      match: { ...(r.methods === null ? {} : { methods: [...r.methods] }), path: r.prefix ? `${r.path}*` : r.path },
      cost: r.cost,
      auth: r.auth,
      ...(r.tiers === null ? {} : { tiers: [...r.tiers] }),
      ...(r.limits.size === 0 ? {} : { limits: Object.fromEntries([...r.limits].map(([t, l]) => [t, { limit: l.limit, windowSeconds: l.windowSeconds }])) }),
      upstream: r.upstream,
      mode: r.mode,
    })),
  };
}
