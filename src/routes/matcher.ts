import { DEFAULT_ROUTE, normalisePath, type Route } from './routes';

/*
 * The route table, compiled once per reload (as fastify's find-my-way compiles its routes
 * into a tree rather than scanning a list per request). The SPEC's rule is "the first route
 * in the file whose match fits", and the compiled form keeps exactly that answer:
 *
 * - exact routes: one Map per method (path → the earliest exact route for that method,
 *   routes without `methods` merged into every map), one lookup;
 * - prefix routes: a character trie of their paths; walking the request path visits every
 *   prefix route that fits, each node holding its routes in file order;
 * - the answer is the fitting route with the lowest file index among both.
 *
 * So a request costs one Map lookup and one walk over its own path, whatever the number of
 * routes.
 */

interface TrieNode {
  readonly children: Map<number, TrieNode>;
  /** Prefix routes whose path ends here, in file order. */
  readonly routes: Route[];
}

function node(): TrieNode {
  return { children: new Map(), routes: [] };
}

/** The earliest route of `routes` that takes `method`, or null. */
function firstFor(routes: readonly Route[], method: string): Route | null {
  for (const r of routes) if (r.methods === null || r.methods.has(method)) return r;
  return null;
}

function earlier(a: Route | null, b: Route | null): Route | null {
  if (a === null) return b;
  if (b === null) return a;
  return a.index < b.index ? a : b;
}

export class RouteMatcher {
  /** Exact routes by method; ANY for methods no route names. */
  private readonly exact = new Map<string, Map<string, Route>>();
  private readonly anyMethod = new Map<string, Route>();
  private readonly trie: TrieNode | null;
  readonly size: number;

  constructor(readonly routes: readonly Route[]) {
    this.size = routes.length;
    const named = new Set<string>();
    for (const r of routes) if (r.methods !== null) for (const m of r.methods) named.add(m);
    for (const m of named) this.exact.set(m, new Map());
    let root: TrieNode | null = null;
    for (const r of routes) {
      if (r.prefix) {
        root ??= node();
        let n = root;
        for (let i = 0; i < r.path.length; i++) {
          const c = r.path.charCodeAt(i);
          let next = n.children.get(c);
          if (next === undefined) {
            next = node();
            n.children.set(c, next);
          }
          n = next;
        }
        n.routes.push(r);
        continue;
      }
      // Routes come in file order: the first one set for a path and method stays.
      const targets = r.methods === null ? [...this.exact.values(), this.anyMethod] : [...r.methods].map((m) => this.exact.get(m) as Map<string, Route>);
      for (const t of targets) if (!t.has(r.path)) t.set(r.path, r);
    }
    this.trie = root;
  }

  /**
   * The route for a request: its method and its target (`req.url`: path and query, or an
   * absolute URL); DEFAULT_ROUTE when none fits. The query never takes part.
   */
  match(method: string, url: string): Route {
    if (this.size === 0) return DEFAULT_ROUTE;
    const path = normalisePath(pathOf(url));
    const exact = (this.exact.get(method) ?? this.anyMethod).get(path) ?? null;
    return earlier(exact, this.prefixMatch(method, path, exact === null ? Infinity : exact.index)) ?? DEFAULT_ROUTE;
  }

  /** The earliest fitting prefix route before `before` (a file index). */
  private prefixMatch(method: string, path: string, before: number): Route | null {
    let n = this.trie;
    let best: Route | null = null;
    for (let i = 0; n !== null; i++) {
      if (n.routes.length > 0) {
        const r = firstFor(n.routes, method);
        if (r !== null && r.index < before) best = earlier(best, r);
      }
      if (i === path.length) {
        // "/v1/catalog/*" also fits "/v1/catalog" (normalisation drops a trailing slash).
        const slash = n.children.get(0x2f);
        if (slash !== undefined && slash.routes.length > 0) {
          const r = firstFor(slash.routes, method);
          if (r !== null && r.index < before) best = earlier(best, r);
        }
        break;
      }
      n = n.children.get(path.charCodeAt(i)) ?? null;
    }
    return best;
  }
}

/** The path of a request target: up to "?" or "#"; for an absolute-form URL, its path. */
export function pathOf(url: string): string {
  const end = pathEnd(url);
  const p = end === url.length ? url : url.slice(0, end);
  if (p.charCodeAt(0) === 0x2f) return p;
  try {
    return new URL(url).pathname;
  } catch {
    return '/' + p;
  }
}

/** Where the path of a request target ends: at its "?" or "#", else its length. */
export function pathEnd(url: string): number {
  let end = url.length;
  const q = url.indexOf('?');
  if (q !== -1) end = q;
  const h = url.indexOf('#');
  if (h !== -1 && h < end) end = h;
  return end;
}

export const EMPTY_MATCHER = new RouteMatcher([]);
