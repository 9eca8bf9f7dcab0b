import { createHash, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { KeyService } from '../auth/keyService';
import { GatewayError, isGatewayError, reply, type ErrorReply } from '../errors';
import { sendError } from '../errorResponse';
import type { HealthView } from '../health/healthView';
import type { QuotaChange } from '../limit/store';
import type { Logger } from '../observability/logger';
import { parseHealthBody, parseKeyPatch, parseNewKey, parsePage, parseQuotaBody, parseRotateBody, type HealthPin } from './validate';

/** What the admin port needs from the rest of the gateway; app.ts provides it. */
export interface AdminDeps {
  readonly token: string | null;
  readonly log: Logger;
  readonly ready: () => boolean;
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  readonly health: {
    current(): HealthView;
    pin(pin: HealthPin, actor: string): Promise<HealthView>;
    /** Ends the pin; false when there was none. */
    unpin(actor: string): Promise<boolean>;
  };
  readonly keys: KeyService;
  /** The usage body of SPEC §9 (main window, windows, quota). */
  readonly usage: (id: string) => Promise<Record<string, unknown>>;
  /** Quota top-up or reset; the new quota usage. */
  readonly quota: (id: string, change: QuotaChange, actor: string) => Promise<Record<string, unknown>>;
  readonly tiers: { current(): Record<string, unknown>; reload(actor: string): Promise<{ ok: true; tiers: Record<string, unknown> } | { ok: false; reasons: string[] }> };
  readonly routes: { current(): Record<string, unknown>; reload(actor: string): Promise<{ ok: true; routes: Record<string, unknown> } | { ok: false; reasons: string[] }> };
  readonly blocks: { list(): Promise<Array<{ ip: string; until: number }>>; unblock(ip: string, actor: string): Promise<boolean> };
}

const MAX_BODY = 64 * 1024;

type Handler = (req: IncomingMessage, params: string[], url: URL, actor: string) => Promise<{ status: number; body?: unknown }>;
interface Route {
  readonly methods: readonly string[];
  readonly pattern: RegExp;
  readonly handler: Handler;
}

/** The JSON body; with `optional`, an empty body is `undefined` rather than a 400. */
function readJson(req: IncomingMessage, optional = false): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > MAX_BODY) {
        // Stop keeping the body but let the 413 be written: destroying the request here
        // would reset the connection before the client hears why. The reply says
        // Connection: close, so the rest of the upload ends with it.
        req.off('data', onData);
        req.resume();
        reject(new GatewayError('payload_too_large', `admin bodies are at most ${MAX_BODY} bytes`));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => {
      if (size > MAX_BODY) return; // already answered 413
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '' && optional) return resolve(undefined);
      if (text.trim() === '') return reject(new GatewayError('invalid_request', 'a JSON body is required'));
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new GatewayError('invalid_request', 'body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time: both sides are hashed to equal length before comparing. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = header === undefined ? null : /^Bearer\s+(.+)$/i.exec(header);
  const given = m ? m[1].trim() : '';
  return timingSafeEqual(digest(given), digest(token)) && given.length > 0;
}

function send(res: ServerResponse, status: number, body?: unknown, contentType = 'application/json'): void {
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function createAdminServer(deps: AdminDeps): http.Server {
  const routes: Route[] = [
    {
      methods: ['GET'], pattern: /^\/admin\/health$/,
      handler: async () => ({ status: 200, body: deps.health.current() }),
    },
    {
      methods: ['PUT', 'POST'], pattern: /^\/admin\/health$/,
      handler: async (req, _p, _u, actor) => ({ status: 200, body: await deps.health.pin(parseHealthBody(await readJson(req)), actor) }),
    },
    {
      methods: ['DELETE'], pattern: /^\/admin\/health\/override$/,
      handler: async (_r, _p, _u, actor) => {
        if (!(await deps.health.unpin(actor))) throw new GatewayError('not_found', 'no override is in force');
        return { status: 200, body: deps.health.current() };
      },
    },
    {
      methods: ['GET'], pattern: /^\/admin\/tiers$/,
      handler: async () => ({ status: 200, body: deps.tiers.current() }),
    },
    {
      methods: ['POST'], pattern: /^\/admin\/tiers\/reload$/,
      handler: async (_r, _p, _u, actor) => {
        const r = await deps.tiers.reload(actor);
        if (!r.ok) throw new GatewayError('invalid_request', `tiers file rejected: ${r.reasons.join('; ')}`, { reasons: r.reasons });
        return { status: 200, body: r.tiers };
      },
    },
    {
      methods: ['GET'], pattern: /^\/admin\/routes$/,
      handler: async () => ({ status: 200, body: deps.routes.current() }),
    },
    {
      methods: ['POST'], pattern: /^\/admin\/routes\/reload$/,
      handler: async (_r, _p, _u, actor) => {
        const r = await deps.routes.reload(actor);
        if (!r.ok) throw new GatewayError('invalid_request', `routes file rejected: ${r.reasons.join('; ')}`, { reasons: r.reasons });
        return { status: 200, body: r.routes };
      },
    },
    {
      methods: ['POST'], pattern: /^\/admin\/keys$/,
      handler: async (req, _p, _u, actor) => ({ status: 201, body: await deps.keys.create(parseNewKey(await readJson(req)), actor) }),
    },
    {
      methods: ['GET'], pattern: /^\/admin\/keys$/,
      handler: async (_r, _p, url) => {
        const { limit, cursor } = parsePage(url.searchParams);
        return { status: 200, body: await deps.keys.list(limit, cursor) };
      },
    },
    {
      methods: ['GET'], pattern: /^\/admin\/keys\/([^/]+)$/,
      handler: async (_r, [id]) => ({ status: 200, body: await deps.keys.get(id) }),
    },
    {
      methods: ['PATCH'], pattern: /^\/admin\/keys\/([^/]+)$/,
      handler: async (req, [id], _u, actor) => ({ status: 200, body: await deps.keys.update(id, parseKeyPatch(await readJson(req)), actor) }),
    },
    {
      methods: ['DELETE'], pattern: /^\/admin\/keys\/([^/]+)$/,
      handler: async (_r, [id], _u, actor) => {
        await deps.keys.revoke(id, actor);
        return { status: 204 };
      },
    },
    {
      methods: ['POST'], pattern: /^\/admin\/keys\/([^/]+)\/rotate$/,
      handler: async (req, [id], _u, actor) => ({ status: 200, body: await deps.keys.rotate(id, actor, parseRotateBody(await readJson(req, true))) }),
    },
    {
      methods: ['GET'], pattern: /^\/admin\/keys\/([^/]+)\/usage$/,
      handler: async (_r, [id]) => ({ status: 200, body: await deps.usage(id) }),
    },
    {
      methods: ['POST'], pattern: /^\/admin\/keys\/([^/]+)\/quota$/,
      handler: async (req, [id], _u, actor) => ({ status: 200, body: await deps.quota(id, parseQuotaBody(await readJson(req)), actor) }),
    },
    {
      methods: ['GET'], pattern: /^\/admin\/blocks$/,
      handler: async () => {
        const blocks = await deps.blocks.list();
        return { status: 200, body: { blocks: blocks.map((b) => ({ ip: b.ip, until: new Date(b.until).toISOString() })) } };
      },
    },
    {
      methods: ['DELETE'], pattern: /^\/admin\/blocks\/([^/]+)$/,
      handler: async (_r, [ip], _u, actor) => {
        if (isIP(ip) === 0) throw new GatewayError('invalid_request', 'not an IP address');
        if (!(await deps.blocks.unblock(ip, actor))) throw new GatewayError('not_found', 'that IP is not blocked');
        return { status: 204 };
      },
    },
  ];

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/livez') return send(res, 200, { status: 'ok' });
    if (path === '/readyz') return deps.ready() ? send(res, 200, { status: 'ready' }) : send(res, 503, { status: 'not ready' });
    if (path === '/metrics') {
      const m = await deps.metrics();
      return send(res, 200, m.body, m.contentType);
    }
    if (!path.startsWith('/admin/')) throw new GatewayError('not_found');
    if (deps.token !== null && !tokenMatches(req.headers.authorization, deps.token)) {
      res.setHeader('www-authenticate', 'Bearer');
      throw new GatewayError('unauthorized');
    }
    let pathMatched = false;
    for (const r of routes) {
      const m = r.pattern.exec(path);
      if (m === null) continue;
      pathMatched = true;
      if (!r.methods.includes(method)) continue;
      const actor = req.socket.remoteAddress ?? 'unknown';
      const out = await r.handler(req, m.slice(1).map(decodeURIComponent), url, actor);
      return send(res, out.status, out.body);
    }
    throw new GatewayError(pathMatched ? 'method_not_allowed' : 'not_found');
  }

  return http.createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      let e: ErrorReply;
      if (isGatewayError(err)) e = err;
      else {
        deps.log.error({ err }, 'admin request failed');
        e = reply(isRedisDown(err) ? 'store_unavailable' : 'internal_error');
      }
      // An unread request body must not be taken for the next request on this socket.
      if (!req.complete) res.setHeader('connection', 'close');
      sendError(res, e);
    });
  });
}

function isRedisDown(err: unknown): boolean {
  const msg = String((err as Error)?.message ?? '');
  return /Stream isn't writeable|Cluster isn't ready|Connection is closed|ECONNREFUSED|timed out|Timed out|MaxRetriesPerRequest|breaker/i.test(msg);
}
