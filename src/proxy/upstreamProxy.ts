import type http from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { Pool, type Dispatcher } from 'undici';
import type { HeaderMode } from '../config/load';
import type { ErrorCode } from '../errors';
import type { HeaderList } from '../errorResponse';
import { upstreamErrorCode } from './upstreamErrors';
import { cleanUpgradeHeaders, requestHasBody, requestHead, responseHead, type ForwardedFor } from './forwardingHeaders';

/*
 * Plain HTTP requests go to the upstream through an undici Pool (Node's own HTTP/1.1
 * client, kept by the Node project): in an A/B against the same forwarding done with
 * node:http and a keep-alive Agent it needed ≈ 25 µs less CPU per request (docs/performance.md, "Why
 * plain requests go through undici").
 *
 * WebSocket upgrades are carried by http-proxy, and this is the only file that imports it
 * (last released 2020). If one of its known defects bites, `http-proxy-3` is its maintained
 * API-compatible rewrite (it needs Node 22, which is why it is not used yet).
 */

export interface UpstreamProxyOptions {
  readonly target: string;
  readonly timeoutMs: number;
  readonly headerMode: HeaderMode;
  /** The proxy port speaks TLS: the upstream is told X-Forwarded-Proto: https. */
  readonly secure: boolean;
  /** True once shutdown began: responses then say `Connection: close`. */
  readonly draining: () => boolean;
  /**
   * The upstream failed; `where` is the response (web) or the raw socket (WebSocket), and
   * `headers` are ours given to `web` for the response, to go on the error in its place.
   */
  readonly onError: (code: ErrorCode, req: http.IncomingMessage, where: http.ServerResponse | Duplex, err: Error, headers: HeaderList | null) => void;
  /** The upstream's response head arrived. */
  readonly onResponseHead: (req: http.IncomingMessage, seconds: number, status: number) => void;
  /** The client went away before the response ended; the upstream request was cancelled. */
  readonly onCancelled: (req: http.IncomingMessage) => void;
  /** The upstream's response body ended (and so ours). */
  readonly onResponseEnd: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  /** The API key header (lower case) to leave out upstream (FORWARD_API_KEY=false), else null. */
  readonly dropKeyHeader?: string | null;
}

/** What an admitted request carries to its upstream (SPEC §3, §10). */
export interface Forward {
  readonly tier: string;
  /** A route's upstream (origin and optional path prefix); null = the default target. */
  readonly upstream: string | null;
  readonly requestId: string;
  readonly keyId: string | null;
  readonly identity: string | null;
}

export interface UpstreamProxy {
  /** Proxies an admitted request; `headers` (ours, e.g. rate-limit) go on the response. */
  web(req: http.IncomingMessage, res: http.ServerResponse, fwd: Forward, headers: HeaderList | null): void;
  /** A WebSocket upgrade, carried by http-proxy. */
  ws(req: http.IncomingMessage, socket: Duplex, head: Buffer, fwd: Forward): void;
  /**
   * After a routes reload: the pools of route upstreams no longer in `upstreams` are closed
   * once their in-flight requests end (UPSTREAM_URL's stays). A request admitted on the old
   * routes that reaches here afterwards gets a new pool, retired at the next reload.
   */
  retain(upstreams: ReadonlySet<string>): void;
  close(): void;
}

/** One upstream: its kept-alive pool, path prefix and Host. */
interface Target {
  readonly url: string;
  readonly pool: Pool;
  readonly prefix: string;
  readonly host: string;
}

/** What every forwarded request shares. */
interface Shared {
  readonly opts: UpstreamProxyOptions;
  readonly stripUpstreamRateLimit: boolean;
}

/**
 * On a client's connection: the forwarding in flight on it, and whether we watch it. The
 * "connection" of an h2 request is its stream (one request each, many per socket): its
 * `req.socket` is a proxy onto the session's shared socket, where a mark would be shared
 * by every stream and a read after the stream ends throws.
 */
const IN_FLIGHT = Symbol('tollgate.inFlight');
const WATCHED = Symbol('tollgate.watched');
type ClientSocket = Duplex & { [IN_FLIGHT]?: Forwarding; [WATCHED]?: boolean };

/** What an h2 compatibility request has beyond IncomingMessage. */
type MaybeH2 = http.IncomingMessage & { stream?: Duplex & { endAfterHeaders: boolean } };

/** A client that goes away cancels the upstream request still waiting for or reading its response. */
function onClientClose(this: ClientSocket): void {
  const forwarding = this[IN_FLIGHT];
  this[IN_FLIGHT] = undefined;
  forwarding?.cancel();
}

/**
 * One request on its way to the upstream and its response on the way back: the handler
 * undici calls. It uses undici's own callbacks (onConnect, onHeaders, onData, onComplete,
 * onError) rather than the newer controller-style ones, which undici 7 adapts onto these
 * by parsing every response head into an object first (≈ 3 µs per request measured);
 * undici 7 supports both. Methods on a class: no closures per request.
 */
class Forwarding implements Dispatcher.DispatchHandler {
  private abort: ((err?: Error) => void) | null = null;
  private resume: (() => void) | null = null;
  /** The response ended or failed: nothing more is done for it. */
  private done = false;
  /** The client went away: there is nobody to answer. */
  private gone = false;

  constructor(
    /** The client's socket (h2: stream), kept here: undici unsets `req.socket` once it has read the body. */
    private readonly client: ClientSocket,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly ours: HeaderList | null,
    private readonly started: number,
    private readonly shared: Shared,
  ) {}

  /** The client's connection closed before the response ended. */
  cancel(): void {
    if (this.done) return;
    this.gone = true;
    this.abort?.();
  }

  onConnect(abort: (err?: Error) => void): void {
    // Queued for a connection while the client left: cancel before anything is sent.
    if (this.gone) abort();
    else this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx (e.g. 103 Early Hints) are interim: the final head follows on the same request.
    if (statusCode < 200) return true;
    const { req, res, shared } = this;
    shared.opts.onResponseHead(req, (performance.now() - this.started) / 1000, statusCode);
    this.resume = resume;
    if (res.headersSent) {
      // Only if something answered already (it cannot be this response): drop it.
      this.cancel();
      return false;
    }
    try {
      // HTTP/1.0 and h2 (httpVersion "2.0") take no Transfer-Encoding; h2 has no status text
      // (Node warns on one) and drains by GOAWAY, not Connection: close.
      const h1 = req.httpVersionMajor === 1;
      const head = responseHead(rawHeaders, req.httpVersion !== '1.1', shared.stripUpstreamRateLimit, this.ours, h1 && shared.opts.draining());
      if (h1) res.writeHead(statusCode, statusText, head);
      else res.writeHead(statusCode, head);
    } catch (err) {
      // A header value Node refuses to send: the client gets a 502, not a crash.
      this.fail(err as Error);
      this.abort?.();
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    const res = this.res;
    if (res.write(chunk) || res.destroyed || this.resume === null) return true;
    // The client reads slower than the upstream sends: undici pauses until it drains.
    res.once('drain', this.resume);
    return false;
  }

  onComplete(): void {
    if (this.done) return;
    this.done = true;
    if (this.client[IN_FLIGHT] === this) this.client[IN_FLIGHT] = undefined;
    this.res.end();
    this.shared.opts.onResponseEnd(this.req, this.res);
  }

  onError(err: Error): void {
    // Also when undici saw the client's upload end early before our close listener ran:
    // a client that left is not an upstream failure.
    if (this.gone || this.client.destroyed) {
      if (!this.done) this.shared.opts.onCancelled(this.req);
      this.done = true;
      return;
    }
    this.fail(err);
  }

  /** Refused, reset, timed out, or cut off mid-body (the client's connection is then closed). */
  private fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.shared.opts.onError(upstreamErrorCode(err as NodeJS.ErrnoException), this.req, this.res, err, this.ours);
  }
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

/** A timeout of ours, known to the client by code, on a WebSocket's upstream request. */
function timeoutError(): NodeJS.ErrnoException {
  return Object.assign(new Error('upstream timed out'), { code: 'ETIMEDOUT' });
}

export function createUpstreamProxy(opts: UpstreamProxyOptions): UpstreamProxy {
  // One kept-alive pool per upstream URL: the default (UPSTREAM_URL) made now, a route's
  // (SPEC §10) on its first request, closed by `retain` when a reload drops its last route.
  const targets = new Map<string, Target>();
  const targetOf = (url: string): Target => {
    let t = targets.get(url);
    if (t === undefined) {
      const u = new URL(url);
      // Keep-alive connections, up to 1,024 at once. undici closes an idle one after 4 s, or
      // sooner when the upstream's Keep-Alive: timeout=… says so, so that we never write to
      // a connection the upstream is closing. No response head within the timeout after the
      // request was sent → 504; the same silence in the middle of a body cuts the response.
      const pool = new Pool(u.origin, { connections: 1024, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs });
      t = { url, pool, prefix: u.pathname.replace(/\/+$/, ''), host: u.host };
      targets.set(url, t);
    }
    return t;
  };
  const defaultTarget = targetOf(opts.target);
  const dropKeyHeader = opts.dropKeyHeader ?? null;
  const shared: Shared = { opts, stripUpstreamRateLimit: opts.headerMode !== 'upstream' };
  const proto = opts.secure ? 'https' : 'http';
  // WebSocket upgrades only; each gets its own connection (an upgraded one is never reused).
  const wsProxy = httpProxy.createProxyServer({ target: opts.target, xfwd: true, changeOrigin: true, ws: true });

  wsProxy.on('proxyReqWs', (proxyReq) => {
    proxyReq.setTimeout(opts.timeoutMs, () => proxyReq.destroy(timeoutError()));
  });

  // Permanent: without an 'error' listener http-proxy throws and a socket hang-up would crash us.
  wsProxy.on('error', (err, req, where) => {
    opts.onError(upstreamErrorCode(err as NodeJS.ErrnoException), req, where as Duplex, err, null);
  });

  return {
    web(req, res, fwd, headers) {
      const target = fwd.upstream === null ? defaultTarget : targetOf(fwd.upstream);
      const stream = (req as MaybeH2).stream;
      const client: ClientSocket = stream ?? req.socket;
      const forwarding = new Forwarding(client, req, res, headers, performance.now(), shared);
      // Cancel upstream when the client goes away: one listener per client connection, not per request.
      client[IN_FLIGHT] = forwarding;
      if (client[WATCHED] !== true) {
        client[WATCHED] = true;
        client.once('close', onClientClose);
      }
      // undici reports a request it refuses (a header or path it will not send) to onError: a 502.
      const head: ForwardedFor = {
        remoteAddress: req.socket.remoteAddress ?? '', upstreamHost: target.host, tier: fwd.tier, proto,
        requestId: fwd.requestId, keyId: fwd.keyId, identity: fwd.identity, dropKeyHeader,
      };
      target.pool.dispatch({
        method: req.method ?? 'GET',
        path: upstreamPath(target.prefix, req.url ?? '/'),
        headers: requestHead(req, head),
        body: requestHasBody(req, stream?.endAfterHeaders) ? req : null,
      }, forwarding);
    },
    ws(req, socket, head, fwd) {
      cleanUpgradeHeaders(req, { tier: fwd.tier, requestId: fwd.requestId, keyId: fwd.keyId, identity: fwd.identity, dropKeyHeader });
      if (fwd.upstream === null) wsProxy.ws(req, socket, head);
      else wsProxy.ws(req, socket, head, { target: fwd.upstream });
    },
    retain(upstreams) {
      for (const [url, t] of targets) {
        if (t === defaultTarget || upstreams.has(url)) continue;
        targets.delete(url);
        // close(), not destroy(): requests still on their way finish first.
        t.pool.close().catch(() => undefined);
      }
    },
    close() {
      wsProxy.close();
      for (const t of targets.values()) t.pool.destroy().catch(() => undefined);
    },
  };
}
