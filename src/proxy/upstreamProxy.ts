import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { HeaderMode } from '../config/load';
import type { ErrorCode } from '../errors';
import type { HeaderList } from '../errorResponse';
import { upstreamErrorCode } from './upstreamErrors';

/*
 * The only file that imports http-proxy (last released 2020). If one of its known
 * defects bites, `http-proxy-3` is its maintained API-compatible rewrite (it needs
 * Node 22, which is why it is not used yet).
 */

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate'];

export interface UpstreamProxyOptions {
  readonly target: string;
  readonly timeoutMs: number;
  readonly headerMode: HeaderMode;
  /** True once shutdown began: responses then say `Connection: close`. */
  readonly draining: () => boolean;
  /**
   * The upstream failed; `where` is the response (web) or the raw socket (WebSocket), and
   * `headers` are ours given to `web` for the response, to go on the error in its place.
   */
  readonly onError: (code: ErrorCode, req: http.IncomingMessage, where: http.ServerResponse | Duplex, err: Error, headers: HeaderList | null) => void;
  /** The upstream's response head arrived. */
  readonly onResponseHead: (req: http.IncomingMessage, seconds: number) => void;
  /** The upstream's response body ended (http-proxy has then ended ours). */
  readonly onResponseEnd: (req: http.IncomingMessage) => void;
}

export interface UpstreamProxy {
  /** Proxies an admitted request; `headers` (ours, e.g. rate-limit) go on the response. */
  web(req: http.IncomingMessage, res: http.ServerResponse, headers: HeaderList | null): void;
  ws(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
}

const STARTED = Symbol('tollgate.upstreamStarted');
const TIMED_OUT = Symbol('tollgate.upstreamTimedOut');
const OUR_HEADERS = Symbol('tollgate.responseHeaders');
interface Tagged {
  [STARTED]?: number;
  [TIMED_OUT]?: boolean;
  [OUR_HEADERS]?: HeaderList | null;
}

/** On an upstream request: the client request it serves. */
const CLIENT_REQ = Symbol('tollgate.clientRequest');
/** On a client socket: the upstream request in flight for it, and whether we watch it. */
const IN_FLIGHT = Symbol('tollgate.inFlight');
const WATCHED = Symbol('tollgate.watched');
type UpstreamRequest = http.ClientRequest & { [CLIENT_REQ]?: http.IncomingMessage; res?: http.IncomingMessage | null };
type ClientSocket = Socket & { [IN_FLIGHT]?: UpstreamRequest; [WATCHED]?: boolean };
/** Node's own link from a socket to the request using it (internal, but stable for years). */
type AgentSocket = Socket & { _httpMessage?: UpstreamRequest | null };

/** A client that goes away cancels the upstream request still waiting for or reading its response. */
function onClientClose(this: ClientSocket): void {
  const upstream = this[IN_FLIGHT];
  this[IN_FLIGHT] = undefined;
  if (upstream !== undefined && !upstream.destroyed && upstream.res?.complete !== true) upstream.destroy();
}

/** An upstream socket silent for UPSTREAM_TIMEOUT_MS: the request on it, if any, is a 504. */
function onUpstreamSocketTimeout(this: AgentSocket): void {
  const clientReq = this._httpMessage?.[CLIENT_REQ];
  if (clientReq === undefined) return; // idle in the pool: the agent closes it itself
  (clientReq as Tagged)[TIMED_OUT] = true;
  this.destroy();
}

/**
 * A keep-alive agent whose sockets carry the upstream timeout themselves, rather than a
 * ClientRequest.setTimeout per request (a timer and listeners per request: measured ~6 µs
 * of CPU). The agent's own `timeout` is the same value, so Node's agent never re-arms a
 * socket between requests either; an idle socket the upstream closes is dropped on its FIN.
 * (The upstream's Keep-Alive header is not passed to our client, so the agent does not
 * shorten idle sockets to it — as with a plain Node agent, which ignores it.)
 */
function createAgent(secure: boolean, timeoutMs: number): http.Agent {
  // Without a keep-alive agent http-proxy sends "Connection: close" and opens a socket per request.
  const options = { keepAlive: true, maxSockets: 1024, maxFreeSockets: 256, scheduling: 'lifo' as const, timeout: timeoutMs };
  const agent = secure ? new https.Agent(options) : new http.Agent(options);
  type Create = (...args: unknown[]) => AgentSocket;
  const hooks = agent as unknown as { createConnection: Create; reuseSocket: (socket: Socket, req: http.ClientRequest) => void };
  const create = hooks.createConnection.bind(agent);
  hooks.createConnection = (...args: unknown[]) => {
    const socket = create(...args);
    socket.setTimeout(timeoutMs);
    socket.on('timeout', onUpstreamSocketTimeout);
    return socket;
  };
  const reuse = hooks.reuseSocket.bind(agent);
  hooks.reuseSocket = (socket, req) => {
    reuse(socket, req);
    // Only if something changed it (e.g. a Keep-Alive: timeout=1 hint): normally a no-op.
    if (socket.timeout !== timeoutMs) socket.setTimeout(timeoutMs);
  };
  return agent;
}

/** Client-sent rate-limit headers would let a caller spoof ours to the upstream. */
function isRateLimitHeader(name: string): boolean {
  return name.startsWith('x-ratelimit') || name.startsWith('ratelimit');
}

const HOP_SET = new Set(HOP_BY_HOP);
const HOP_LENGTHS = new Set(HOP_BY_HOP.map((n) => n.length));
const HOP_FIRST = new Set(HOP_BY_HOP.map((n) => n.charCodeAt(0)));
const LOWER_R = 0x72;
const LOWER_X = 0x78;

/**
 * Whether a raw header name can be one to drop, without lower-casing it: most names
 * (Host, Accept, Content-Type, Date, …) are ruled out by their first letter and length,
 * and toLowerCase on every name of every request and response showed in the profile.
 */
function mayDrop(name: string, rateLimit: boolean): boolean {
  const first = name.charCodeAt(0) | 0x20; // ASCII lower case
  if (rateLimit && (first === LOWER_X || first === LOWER_R) && name.length >= 9) return true;
  return HOP_FIRST.has(first) && HOP_LENGTHS.has(name.length);
}

/**
 * Names in a raw header list (name, value, name, value, …) that are hop-by-hop or, when
 * `rateLimit`, rate-limit headers; null when there are none, which is almost always. The raw
 * list is scanned rather than `for…in` over the parsed headers: measurably cheaper per request.
 */
function namesToDrop(raw: readonly string[], rateLimit: boolean): string[] | null {
  let out: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (!mayDrop(raw[i], rateLimit)) continue;
    const name = raw[i].toLowerCase();
    if (HOP_SET.has(name) || (rateLimit && isRateLimitHeader(name))) (out ??= []).push(name);
  }
  return out;
}

/** Extra hop-by-hop names listed in a Connection header. */
function connectionListed(connection: string | string[] | undefined): string[] | null {
  if (typeof connection !== 'string' || connection === 'keep-alive' || connection === 'close') return null;
  let out: string[] | null = null;
  for (const name of connection.split(',')) {
    const n = name.trim().toLowerCase();
    if (n !== '' && n !== 'close' && n !== 'keep-alive') (out ??= []).push(n);
  }
  return out;
}

/**
 * Drops hop-by-hop headers, those named in Connection, and client rate-limit headers.
 * `Connection` itself stays on the incoming request — http-proxy answers the client with
 * it, and a client that said "close" must hear "close" — and is removed from the
 * upstream request in the `proxyReq` handler instead.
 */
function cleanRequestHeaders(req: http.IncomingMessage, keepUpgrade: boolean): void {
  const headers = req.headers;
  const drop = namesToDrop(req.rawHeaders, true);
  if (drop !== null) {
    for (const n of drop) if (n !== 'connection' && !(keepUpgrade && n === 'upgrade')) delete headers[n];
  }
  if (!keepUpgrade) {
    const listed = connectionListed(headers.connection);
    if (listed !== null) for (const n of listed) delete headers[n];
  }
}

/**
 * The response head for the client as one flat [name, value, …] list: the upstream's
 * headers in their own case and order (repeats such as Set-Cookie kept), without
 * hop-by-hop ones, those named in its Connection, Transfer-Encoding for an HTTP/1.0
 * client, and (unless passed through) its rate-limit headers; then ours. Given to
 * writeHead as a list, Node writes it without building a header map per response —
 * cheaper than http-proxy's own copy, which calls setHeader once per header.
 * Connection is left to Node (keep-alive or close as the client asked), except "close"
 * while draining, so that no client reuses a socket we are about to close.
 */
function responseHead(upstream: http.IncomingMessage, req: http.IncomingMessage, stripRateLimit: boolean, ours: HeaderList | null | undefined, draining: boolean): string[] {
  const raw = upstream.rawHeaders;
  const listed = connectionListed(upstream.headers.connection);
  const http10 = req.httpVersion === '1.0';
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (listed !== null || http10 || mayDrop(name, stripRateLimit)) {
      const lower = name.toLowerCase();
      if (HOP_SET.has(lower) || (stripRateLimit && isRateLimitHeader(lower))) continue;
      if (listed !== null && listed.includes(lower)) continue;
      if (http10 && lower === 'transfer-encoding') continue;
    }
    out.push(name, raw[i + 1]);
  }
  if (ours) for (const [k, v] of ours) out.push(k, v);
  if (draining) out.push('Connection', 'close');
  return out;
}

export function createUpstreamProxy(opts: UpstreamProxyOptions): UpstreamProxy {
  const agent = createAgent(opts.target.startsWith('https:'), opts.timeoutMs);
  // selfHandleResponse: the response head is written by `responseHead` (see there).
  const proxy = httpProxy.createProxyServer({ target: opts.target, agent, xfwd: true, changeOrigin: true, ws: true, selfHandleResponse: true });
  const stripUpstreamRateLimit = opts.headerMode !== 'upstream';

  proxy.on('proxyReq', (proxyReq: UpstreamRequest, req) => {
    // The client's Connection is about its socket, not ours: the agent keeps upstream
    // sockets alive. (Only touched when needed: removeHeader costs ~4 µs.)
    const connection = req.headers.connection;
    if (connection !== undefined && connection !== 'keep-alive') proxyReq.removeHeader('connection');
    proxyReq[CLIENT_REQ] = req;
    // Cancel upstream when the client goes away: one listener per client connection, not
    // per request (http-proxy itself only cancels while the request body is arriving).
    const client = req.socket as ClientSocket;
    client[IN_FLIGHT] = proxyReq;
    if (client[WATCHED] !== true) {
      client[WATCHED] = true;
      client.once('close', onClientClose);
    }
  });

  proxy.on('proxyReqWs', (proxyReq) => {
    proxyReq.setTimeout(opts.timeoutMs, () => proxyReq.destroy());
  });

  proxy.on('proxyRes', (proxyRes, req, res) => {
    const started = (req as Tagged)[STARTED];
    if (started !== undefined) opts.onResponseHead(req, (performance.now() - started) / 1000);
    if (res.headersSent) {
      // Only if something answered already (it cannot be this response): drop it.
      proxyRes.destroy();
      return;
    }
    try {
      const head = responseHead(proxyRes, req, stripUpstreamRateLimit, (req as Tagged)[OUR_HEADERS], opts.draining());
      res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, head);
    } catch (err) {
      // A header value Node refuses to send: the client gets a 502, not a crash.
      proxyRes.destroy();
      opts.onError('bad_gateway', req, res, err as Error, (req as Tagged)[OUR_HEADERS] ?? null);
      return;
    }
    // The head arrived; from here the socket timeout bounds a hung body.
    proxyRes.pipe(res);
  });

  // http-proxy's own per-response 'end' hook: no listener of ours per request.
  proxy.on('end', (req) => opts.onResponseEnd(req));

  // Permanent: without an 'error' listener http-proxy throws and a socket hang-up would crash us.
  proxy.on('error', (err, req, where) => {
    const code = upstreamErrorCode(err as NodeJS.ErrnoException, (req as Tagged)[TIMED_OUT] === true);
    opts.onError(code, req, where as http.ServerResponse | Duplex, err, (req as Tagged)[OUR_HEADERS] ?? null);
  });

  return {
    web(req, res, headers) {
      (req as Tagged)[STARTED] = performance.now();
      (req as Tagged)[OUR_HEADERS] = headers;
      cleanRequestHeaders(req, false);
      proxy.web(req, res);
    },
    ws(req, socket, head) {
      cleanRequestHeaders(req, true);
      proxy.ws(req, socket, head);
    },
    close() {
      proxy.close();
      agent.destroy();
    },
  };
}
