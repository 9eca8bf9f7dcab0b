import http from 'node:http';
import https from 'node:https';
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

function stripResponseHeaders(headers: http.IncomingHttpHeaders, stripRateLimit: boolean): void {
  const connection = headers.connection;
  if (typeof connection === 'string') {
    for (const name of connection.split(',')) {
      const n = name.trim().toLowerCase();
      if (n !== '' && n !== 'close' && n !== 'keep-alive') delete headers[n];
    }
  }
  // http-proxy would copy an upstream "Connection: close" to our client and end its keep-alive.
  for (const h of HOP_BY_HOP) if (headers[h] !== undefined) delete headers[h];
  if (stripRateLimit) for (const name in headers) if (isRateLimitHeader(name)) delete headers[name];
}

export function createUpstreamProxy(opts: UpstreamProxyOptions): UpstreamProxy {
  const secure = opts.target.startsWith('https:');
  // Without a keep-alive agent http-proxy sends "Connection: close" and opens a socket per request.
  const agentOptions = { keepAlive: true, maxSockets: 1024, maxFreeSockets: 256, scheduling: 'lifo' as const };
  const agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const proxy = httpProxy.createProxyServer({ target: opts.target, agent, xfwd: true, changeOrigin: true, ws: true });
  const stripUpstreamRateLimit = opts.headerMode !== 'upstream';

  proxy.on('proxyReq', (proxyReq, req, res) => {
    // The client's Connection is about its socket, not ours: the agent keeps upstream sockets alive.
    proxyReq.removeHeader('connection');
    // Socket inactivity: no response head (or no body progress) this long → 504.
    proxyReq.setTimeout(opts.timeoutMs, () => {
      (req as Tagged)[TIMED_OUT] = true;
      proxyReq.destroy();
    });
    // A client that goes away cancels the upstream request (http-proxy only does this
    // while the request body is still arriving).
    res.once('close', () => {
      if (!res.writableFinished) proxyReq.destroy();
    });
  });

  proxy.on('proxyReqWs', (proxyReq) => {
    proxyReq.setTimeout(opts.timeoutMs, () => proxyReq.destroy());
  });

  proxy.on('proxyRes', (proxyRes, req) => {
    const started = (req as Tagged)[STARTED];
    if (started !== undefined) opts.onResponseHead(req, (performance.now() - started) / 1000);
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
