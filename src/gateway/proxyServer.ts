import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { Server } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { TlsPair } from './tlsCredentials';

/*
 * The proxy port's listener, one factory for the three kinds (SPEC §11):
 *   - no TLS: node:http;
 *   - TLS, HTTP2=false: node:https (HTTP/1.1 only);
 *   - TLS, HTTP2=true: node:http2's secure server with allowHTTP1, so ALPN offers h2 and
 *     http/1.1 on one port. HTTP/1.1 connections (and clients without ALPN) are served by
 *     node:http's own connection handling, WebSocket upgrades included; h2 streams reach the
 *     same handler through Node's compatibility API (Http2ServerRequest/Response mirror
 *     IncomingMessage/ServerResponse), so the request pipeline stays one code path.
 * What differs between the protocols lives here (drain, limits) and in the two places that
 * must know (upstreamProxy: the h2 stream as the client's connection; forwardingHeaders:
 * pseudo-headers and connection-specific names).
 */

export type ListenerKind = 'http' | 'https' | 'h2';

export interface ProxyListenerOptions {
  /** The certificate pair (already checked) and the lowest version; null: plain HTTP. */
  readonly tls: { readonly pair: TlsPair; readonly minVersion: 'TLSv1.2' | 'TLSv1.3' } | null;
  /** With TLS: offer h2 besides http/1.1. */
  readonly http2: boolean;
  readonly onRequest: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  readonly onUpgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** An h2 session was closed for resetting streams too fast (rapid reset); `ip` its peer. */
  readonly onResetFlood: (ip: string) => void;
}

export interface ProxyListener {
  readonly server: Server;
  readonly kind: ListenerKind;
  /** New connections get `pair`; open ones keep the certificate they were opened with. */
  setPair(pair: TlsPair): void;
  /**
   * While draining (repeated): closes idle HTTP/1.1 connections, and asks every h2 session to
   * go away (GOAWAY: the client opens no new streams there; open ones finish, then it closes).
   */
  closeIdle(): void;
  /** The drain time is over: every connection closed now. */
  closeAll(): void;
}

/** Keep-alive from load balancers: outlive their idle timeout so they never reuse a closed socket. */
const KEEP_ALIVE_MS = 65_000;
const HEADERS_TIMEOUT_MS = 66_000;

/**
 * h2 limits. 128 streams at once per connection (RFC 9113 recommends at least 100; nginx
 * uses 128): a client cannot hold more requests open than that on one connection, and
 * more connections cost it handshakes. The header list may be 32 KiB: HTTP/1.1's default
 * limit is 16 KiB of raw header bytes, and h2 counts 32 bytes more for every header. Per
 * session nghttp2 may buffer up to 10 MB (Node's default, set here so it is on record)
 * before the session is refused new streams.
 */
export const H2_MAX_CONCURRENT_STREAMS = 128;
export const H2_MAX_HEADER_LIST_SIZE = 32 * 1024;
const H2_MAX_SESSION_MEMORY_MB = 10;

/**
 * Rapid reset (CVE-2023-44487): a client opens streams and cancels them at once, so the
 * gateway starts work (auth, a limit decision, an upstream request) nobody waits for,
 * never bounded by the concurrent-stream limit. Measured on Node 20.20 (nghttp2 1.61): one
 * session resetting 10,000 streams was never stopped, and held the event loop for seconds
 * (test/e2e/h2-abuse.e2e.test.ts). So each session gets a token bucket of client resets
 * (streams the client aborted before our response ended): 100 at once, 10 more per second,
 * as nghttp2's own (later) limiter does with larger numbers. A browser cancels a handful;
 * a session past the bucket is sent GOAWAY ENHANCE_YOUR_CALM and closed.
 */
export const H2_RESET_BURST = 100;
export const H2_RESETS_PER_SECOND = 10;
const RESETS = Symbol('tollgate.resets');
const ON_FLOOD = Symbol('tollgate.onResetFlood');
type GuardedSession = http2.ServerHttp2Session & { [RESETS]?: { tokens: number; at: number }; [ON_FLOOD]?: (ip: string) => void };

/** The client reset a stream mid-request: take a token from its session, or end the session. */
function onStreamAborted(this: http2.ServerHttp2Stream): void {
  const session = this.session as GuardedSession | undefined;
  if (session === undefined || session.destroyed) return;
  const now = performance.now();
  const bucket = session[RESETS] ??= { tokens: H2_RESET_BURST, at: now };
  bucket.tokens = Math.min(H2_RESET_BURST, bucket.tokens + ((now - bucket.at) / 1000) * H2_RESETS_PER_SECOND);
  bucket.at = now;
  bucket.tokens -= 1;
  if (bucket.tokens >= 0) return;
  session[ON_FLOOD]?.(session.socket?.remoteAddress ?? '');
  // A final GOAWAY with the reason, then the connection is closed: what the client has
  // already sent in its wake is never read.
  session.destroy(undefined, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
}

function badRequest(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: 'invalid_request', message: 'Malformed HTTP request.' });
  socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
}

/** Swallows a stream error Node would otherwise rethrow: the response is already lost. */
function ignore(): void {
  // The compatibility response reports nothing more; upstreamProxy sees the stream close.
}

/** The HTTP/1.1 listeners (plain and TLS) are wired alike; only the certificate handling differs. */
function http1Listener(server: http.Server | https.Server, kind: 'http' | 'https', opts: ProxyListenerOptions, setPair: ProxyListener['setPair']): ProxyListener {
  server.on('upgrade', opts.onUpgrade);
  server.on('clientError', badRequest);
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  return {
    server,
    kind,
    setPair,
    closeIdle: () => server.closeIdleConnections(),
    closeAll: () => server.closeAllConnections(),
  };
}

function plain(opts: ProxyListenerOptions): ProxyListener {
  return http1Listener(http.createServer(opts.onRequest), 'http', opts, () => undefined);
}

function secureHttp1(opts: ProxyListenerOptions, tls: NonNullable<ProxyListenerOptions['tls']>): ProxyListener {
  const server = https.createServer({ cert: tls.pair.cert, key: tls.pair.key, minVersion: tls.minVersion }, opts.onRequest);
  return http1Listener(server, 'https', opts, (pair) => server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: tls.minVersion }));
}

function secureH2(opts: ProxyListenerOptions, tls: NonNullable<ProxyListenerOptions['tls']>): ProxyListener {
  const server = http2.createSecureServer({
    cert: tls.pair.cert,
    key: tls.pair.key,
    minVersion: tls.minVersion,
    allowHTTP1: true,
    // Nagle's algorithm off on every connection, as node:http and node:https do by default
    // (node:http2's server leaves it on): a response written in two pieces must not wait
    // for the client's delayed ACK.
    noDelay: true,
    maxSessionMemory: H2_MAX_SESSION_MEMORY_MB,
    settings: { maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS, maxHeaderListSize: H2_MAX_HEADER_LIST_SIZE },
  });
  // The compatibility types are structural twins of node:http's; the pipeline reads only
  // what both have (url, method, headers, rawHeaders, socket address; writeHead, write, end).
  server.on('request', opts.onRequest as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  // HTTP/1.1 connections are node:http's: its upgrade and clientError events, its timeouts.
  server.on('upgrade', opts.onUpgrade);
  server.on('clientError', badRequest);
  const h1 = server as unknown as Pick<http.Server, 'keepAliveTimeout' | 'headersTimeout' | 'closeIdleConnections'>;
  h1.keepAliveTimeout = KEEP_ALIVE_MS;
  h1.headersTimeout = HEADERS_TIMEOUT_MS;

  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<TLSSocket>();
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('session', (session: GuardedSession) => {
    session[ON_FLOOD] = opts.onResetFlood;
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    // An idle h2 connection is closed like an idle HTTP/1.1 one, with a GOAWAY first.
    session.setTimeout(KEEP_ALIVE_MS, () => session.close());
  });
  server.on('stream', (stream: http2.ServerHttp2Stream) => {
    stream.on('error', ignore);
    stream.on('aborted', onStreamAborted);
  });
  // A session's protocol errors are the client's; without this listener they are only dropped too.
  server.on('sessionError', ignore);

  return {
    server,
    kind: 'h2',
    setPair: (pair) => server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: tls.minVersion }),
    closeIdle: () => {
      h1.closeIdleConnections();
      for (const session of sessions) if (!session.closed) session.close();
    },
    closeAll: () => {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}

export function createProxyListener(opts: ProxyListenerOptions): ProxyListener {
  if (opts.tls === null) return plain(opts);
  return opts.http2 ? secureH2(opts, opts.tls) : secureHttp1(opts, opts.tls);
}
