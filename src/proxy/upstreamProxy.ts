import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { HeaderMode } from '../config/load';
import type { ErrorCode } from '../errors';
import type { HeaderList } from '../errorResponse';
import { upstreamErrorCode } from './upstreamErrors';
import { cleanUpgradeHeaders, requestHasBody, requestHead, responseHead } from './forwardingHeaders';

/*
 * The only file that imports http-proxy (last released 2020). It carries WebSocket
 * upgrades. Plain HTTP requests are forwarded here with node:http directly: http-proxy's
 * web path cost ≈ 30 µs of CPU per request more than this (see the README, "Why plain
 * requests do not go through http-proxy"). If one of its known defects bites, `http-proxy-3`
 * is its maintained API-compatible rewrite (it needs Node 22, which is why it is not used yet).
 */

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
  /** The upstream's response body ended (and so ours). */
  readonly onResponseEnd: (req: http.IncomingMessage) => void;
}

export interface UpstreamProxy {
  /** Proxies an admitted request; `headers` (ours, e.g. rate-limit) go on the response. */
  web(req: http.IncomingMessage, res: http.ServerResponse, tier: string, headers: HeaderList | null): void;
  /** A WebSocket upgrade, carried by http-proxy. */
  ws(req: http.IncomingMessage, socket: Duplex, head: Buffer, tier: string): void;
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

/** On an upstream request and response: the client request and response they serve. */
const CLIENT_REQ = Symbol('tollgate.clientRequest');
const CLIENT_RES = Symbol('tollgate.clientResponse');
/** On a client socket: the upstream request in flight for it, and whether we watch it. */
const IN_FLIGHT = Symbol('tollgate.inFlight');
const WATCHED = Symbol('tollgate.watched');
interface ServesClient {
  [CLIENT_REQ]?: http.IncomingMessage;
  [CLIENT_RES]?: http.ServerResponse;
}
function serves(upstream: ServesClient, req: http.IncomingMessage, res: http.ServerResponse): void {
  upstream[CLIENT_REQ] = req;
  upstream[CLIENT_RES] = res;
}
type UpstreamRequest = http.ClientRequest & ServesClient & { res?: http.IncomingMessage | null };
type UpstreamResponse = http.IncomingMessage & ServesClient;
/** On a client response held back for 'drain': the upstream response to resume. */
const UPSTREAM_RES = Symbol('tollgate.upstreamResponse');
type ClientResponse = http.ServerResponse & { [UPSTREAM_RES]?: UpstreamResponse };

function onClientDrain(this: ClientResponse): void {
  const upstream = this[UPSTREAM_RES];
  this[UPSTREAM_RES] = undefined;
  upstream?.resume();
}
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
  // Keep-alive: without it every request would open (and close) its own upstream socket.
  // Node's defaults otherwise (256 idle sockets kept, most recently used first): every
  // option here is copied into each request's options by the agent.
  const options = { keepAlive: true, maxSockets: 1024, timeout: timeoutMs };
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

/** The target's path prefix ('' for "/") and the request's path joined. */
function upstreamPath(prefix: string, url: string): string {
  if (url.charCodeAt(0) === 0x2f) return prefix + url; // '/'
  // Absolute form (GET http://host/path) or "*": only its path and query go on.
  try {
    const u = new URL(url);
    return prefix + u.pathname + u.search;
  } catch {
    return prefix + '/' + url;
  }
}

export function createUpstreamProxy(opts: UpstreamProxyOptions): UpstreamProxy {
  const target = new URL(opts.target);
  const secure = target.protocol === 'https:';
  const agent = createAgent(secure, opts.timeoutMs);
  const request = secure ? https.request : http.request;
  const prefix = target.pathname.replace(/\/+$/, '');
  const hostname = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
  const port = Number(target.port || (secure ? 443 : 80));
  const stripUpstreamRateLimit = opts.headerMode !== 'upstream';
  // WebSocket upgrades only; plain requests are forwarded by `web` below.
  const wsProxy = httpProxy.createProxyServer({ target: opts.target, agent, xfwd: true, changeOrigin: true, ws: true });

  function fail(code: ErrorCode, req: http.IncomingMessage, where: http.ServerResponse | Duplex, err: Error): void {
    opts.onError(code, req, where, err, (req as Tagged)[OUR_HEADERS] ?? null);
  }

  // Handlers shared by every request (`this` is the upstream request or response): no
  // closures per request.
  function onUpstreamError(this: UpstreamRequest, err: NodeJS.ErrnoException): void {
    const req = this[CLIENT_REQ];
    const res = this[CLIENT_RES];
    if (req === undefined || res === undefined) return;
    // We cancelled it because the client went away: there is nobody to answer.
    if (req.socket.destroyed && err.code === 'ECONNRESET') return;
    fail(upstreamErrorCode(err, (req as Tagged)[TIMED_OUT] === true), req, res, err);
  }

  function onUpstreamResponse(this: UpstreamRequest, upstream: UpstreamResponse): void {
    const req = this[CLIENT_REQ];
    const res = this[CLIENT_RES];
    if (req === undefined || res === undefined) return;
    const started = (req as Tagged)[STARTED];
    if (started !== undefined) opts.onResponseHead(req, (performance.now() - started) / 1000);
    if (res.headersSent) {
      // Only if something answered already (it cannot be this response): drop it.
      upstream.destroy();
      return;
    }
    try {
      const head = responseHead(upstream, req, stripUpstreamRateLimit, (req as Tagged)[OUR_HEADERS], opts.draining());
      res.writeHead(upstream.statusCode ?? 502, upstream.statusMessage, head);
    } catch (err) {
      // A header value Node refuses to send: the client gets a 502, not a crash.
      upstream.destroy();
      fail('bad_gateway', req, res, err as Error);
      return;
    }
    serves(upstream, req, res);
    // Forwarded by hand rather than with pipe(): pipe adds and later removes some ten
    // listeners per response, which showed in the profile; these are two.
    upstream.on('data', onUpstreamData);
    upstream.on('close', onUpstreamResponseClose);
  }

  function onUpstreamData(this: UpstreamResponse, chunk: Buffer): void {
    const res = this[CLIENT_RES];
    if (res !== undefined && !res.write(chunk) && !res.destroyed) {
      // The client reads slower than the upstream sends: wait for it, buffering nothing more.
      this.pause();
      (res as ClientResponse)[UPSTREAM_RES] = this;
      res.once('drain', onClientDrain);
    }
  }

  function onUpstreamResponseClose(this: UpstreamResponse): void {
    const req = this[CLIENT_REQ];
    const res = this[CLIENT_RES];
    if (req === undefined || res === undefined) return;
    // Cut off mid-body (upstream reset, timeout): the client must not wait for the rest.
    if (!this.complete) {
      res.destroy();
      return;
    }
    res.end();
    opts.onResponseEnd(req);
  }

  wsProxy.on('proxyReqWs', (proxyReq) => {
    proxyReq.setTimeout(opts.timeoutMs, () => proxyReq.destroy());
  });

  // Permanent: without an 'error' listener http-proxy throws and a socket hang-up would crash us.
  wsProxy.on('error', (err, req, where) => {
    fail(upstreamErrorCode(err as NodeJS.ErrnoException, (req as Tagged)[TIMED_OUT] === true), req, where as Duplex, err);
  });

  return {
    web(req, res, tier, headers) {
      (req as Tagged)[STARTED] = performance.now();
      (req as Tagged)[OUR_HEADERS] = headers;
      let upstream: UpstreamRequest;
      try {
        const head = requestHead(req, { remoteAddress: req.socket.remoteAddress ?? '', upstreamHost: target.host, tier });
        upstream = request({ hostname, port, method: req.method, path: upstreamPath(prefix, req.url ?? '/'), headers: head, agent });
      } catch (err) {
        // A request line or header Node refuses to send on (none that its parser let in).
        fail('bad_gateway', req, res, err as Error);
        return;
      }
      serves(upstream, req, res);
      upstream.on('error', onUpstreamError);
      upstream.on('response', onUpstreamResponse);
      // Cancel upstream when the client goes away: one listener per client connection, not per request.
      const client = req.socket as ClientSocket;
      client[IN_FLIGHT] = upstream;
      if (client[WATCHED] !== true) {
        client[WATCHED] = true;
        client.once('close', onClientClose);
      }
      if (requestHasBody(req)) req.pipe(upstream);
      else upstream.end();
    },
    ws(req, socket, head, tier) {
      cleanUpgradeHeaders(req, tier);
      wsProxy.ws(req, socket, head);
    },
    close() {
      wsProxy.close();
      agent.destroy();
    },
  };
}
