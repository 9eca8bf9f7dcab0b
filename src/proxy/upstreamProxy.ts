import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { HeaderMode } from '../config/load';
import type { ErrorCode } from '../errors';
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
  /** The upstream failed; `where` is the response (web) or the raw socket (WebSocket). */
  readonly onError: (code: ErrorCode, req: http.IncomingMessage, where: http.ServerResponse | Duplex, err: Error) => void;
  /** The upstream's response head arrived. */
  readonly onResponseHead: (req: http.IncomingMessage, seconds: number) => void;
}

export interface UpstreamProxy {
  /** Proxies an admitted request; our rate-limit headers are already set on `res`. */
  web(req: http.IncomingMessage, res: http.ServerResponse): void;
  ws(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
}

const STARTED = Symbol('tollgate.upstreamStarted');
const TIMED_OUT = Symbol('tollgate.upstreamTimedOut');
interface Tagged {
  [STARTED]?: number;
  [TIMED_OUT]?: boolean;
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

/** On an upstream response: its Keep-Alive header, kept back from our client but not from the agent. */
const KEEP_ALIVE_HINT = Symbol('tollgate.keepAliveHint');
type UpstreamResponse = http.IncomingMessage & { [KEEP_ALIVE_HINT]?: string };

/**
 * A keep-alive agent whose sockets carry the upstream timeout themselves, rather than a
 * ClientRequest.setTimeout per request (which measured ~6 µs of CPU per request). With
 * `timeout` set, Node's agent lets an idle socket expire just before the upstream's own
 * Keep-Alive timeout, so it never reuses a socket the upstream is closing; a socket taken
 * from the pool is re-armed with UPSTREAM_TIMEOUT_MS for the request it carries.
 */
function createAgent(secure: boolean, timeoutMs: number): http.Agent {
  // Without a keep-alive agent http-proxy sends "Connection: close" and opens a socket per request.
  const options = { keepAlive: true, maxSockets: 1024, maxFreeSockets: 256, scheduling: 'lifo' as const, timeout: timeoutMs };
  const agent = secure ? new https.Agent(options) : new http.Agent(options);
  type Create = (...args: unknown[]) => AgentSocket;
  const hooks = agent as unknown as {
    createConnection: Create;
    reuseSocket: (socket: Socket, req: http.ClientRequest) => void;
    keepSocketAlive: (socket: AgentSocket) => boolean;
  };
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
    socket.setTimeout(timeoutMs);
  };
  const keep = hooks.keepSocketAlive.bind(agent);
  hooks.keepSocketAlive = (socket) => {
    // Node reads the upstream's Keep-Alive hint from the response headers, where we cleared it.
    const res = socket._httpMessage?.res as UpstreamResponse | null | undefined;
    const hint = res?.[KEEP_ALIVE_HINT];
    if (res && hint !== undefined) res.headers['keep-alive'] = hint;
    return keep(socket);
  };
  return agent;
}

/** Client-sent rate-limit headers would let a caller spoof ours to the upstream. */
function isRateLimitHeader(name: string): boolean {
  return name.startsWith('x-ratelimit') || name.startsWith('ratelimit');
}

/**
 * Drops hop-by-hop headers, those named in Connection, and client rate-limit headers.
 * `Connection` itself stays on the incoming request — http-proxy answers the client with
 * it, and a client that said "close" must hear "close" — and is removed from the
 * upstream request in the `proxyReq` handler instead.
 */
export function cleanRequestHeaders(headers: http.IncomingHttpHeaders, keepUpgrade: boolean): void {
  const connection = headers.connection;
  if (typeof connection === 'string' && !keepUpgrade) {
    for (const name of connection.split(',')) {
      const n = name.trim().toLowerCase();
      if (n !== '' && n !== 'close' && n !== 'keep-alive') delete headers[n];
    }
  }
  for (const h of HOP_BY_HOP) {
    if (h === 'connection' || (keepUpgrade && h === 'upgrade')) continue;
    if (headers[h] !== undefined) delete headers[h];
  }
  for (const name in headers) if (isRateLimitHeader(name)) delete headers[name];
}

/**
 * Hop-by-hop and (unless passed through) rate-limit headers of the upstream's response.
 * They are set to undefined rather than deleted: http-proxy skips undefined values when it
 * copies headers, and `delete` would turn the object into a slow dictionary on every response.
 */
function stripResponseHeaders(headers: http.IncomingHttpHeaders, stripRateLimit: boolean): void {
  const connection = headers.connection;
  if (typeof connection === 'string') {
    for (const name of connection.split(',')) {
      const n = name.trim().toLowerCase();
      if (n !== '' && n !== 'close' && n !== 'keep-alive') headers[n] = undefined;
    }
  }
  // http-proxy would copy an upstream "Connection: close" to our client and end its keep-alive.
  for (const h of HOP_BY_HOP) if (headers[h] !== undefined) headers[h] = undefined;
  if (stripRateLimit) for (const name in headers) if (isRateLimitHeader(name)) headers[name] = undefined;
}

export function createUpstreamProxy(opts: UpstreamProxyOptions): UpstreamProxy {
  const agent = createAgent(opts.target.startsWith('https:'), opts.timeoutMs);
  const proxy = httpProxy.createProxyServer({ target: opts.target, agent, xfwd: true, changeOrigin: true, ws: true });
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

  proxy.on('proxyRes', (proxyRes: UpstreamResponse, req) => {
    const started = (req as Tagged)[STARTED];
    if (started !== undefined) opts.onResponseHead(req, (performance.now() - started) / 1000);
    const hint = proxyRes.headers['keep-alive'];
    if (typeof hint === 'string') proxyRes[KEEP_ALIVE_HINT] = hint;
    stripResponseHeaders(proxyRes.headers, stripUpstreamRateLimit);
    // http-proxy answers with the request's Connection value; while draining that must be
    // "close", or a client may reuse a socket we are about to close.
    if (opts.draining()) req.headers.connection = 'close';
    // The head arrived; from here the socket timeout bounds a hung body.
  });

  // Permanent: without an 'error' listener http-proxy throws and a socket hang-up would crash us.
  proxy.on('error', (err, req, where) => {
    const code = upstreamErrorCode(err as NodeJS.ErrnoException, (req as Tagged)[TIMED_OUT] === true);
    opts.onError(code, req, where as http.ServerResponse | Duplex, err);
  });

  return {
    web(req, res) {
      (req as Tagged)[STARTED] = performance.now();
      cleanRequestHeaders(req.headers, false);
      proxy.web(req, res);
    },
    ws(req, socket, head) {
      cleanRequestHeaders(req.headers, true);
      proxy.ws(req, socket, head);
    },
    close() {
      proxy.close();
      agent.destroy();
    },
  };
}
