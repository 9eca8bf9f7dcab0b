import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import type { HttpResult } from './http';

/* Clients for the gateway's TLS listener: https agents, an h2 session, the certificate a new connection sees. */

const DEFAULT_TIMEOUT_MS = 20000;

/** Keep-alive https agent trusting the given CA files (sockets unref'd when idle, like the http default agent). */
export function tlsAgent(caFiles: readonly string[], opts: https.AgentOptions = {}): https.Agent {
  return new https.Agent({ keepAlive: true, maxSockets: 256, ca: caFiles.map((f) => readFileSync(f)), ...opts });
}

export interface PeerCertificate {
  fingerprint: string;
  /** The ALPN protocol agreed ('h2', 'http/1.1') or false. */
  alpn: string | false;
}

/** Opens a fresh TLS connection (SNI `servername`), reads the server's certificate and ALPN choice, and closes it. */
export function peerCertificate(port: number, caFiles: readonly string[], alpn: string[] = ['h2', 'http/1.1'], timeoutMs = 5000, servername = 'localhost'): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: caFiles.map((f) => readFileSync(f)), ALPNProtocols: alpn, servername }, () => {
      const result = { fingerprint: socket.getPeerCertificate().fingerprint256, alpn: socket.alpnProtocol ?? false };
      socket.end();
      clearTimeout(timer);
      resolve(result);
    });
    const timer = setTimeout(() => socket.destroy(new Error(`no TLS handshake with 127.0.0.1:${port} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** The leaf certificate's SHA-256 fingerprint as Node prints it (AA:BB:…). */
export function fileFingerprint(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}

export interface H2Result extends HttpResult {
  /** The stream's id on its session (same session ⇒ increasing odd numbers). */
  streamId: number;
}

export interface H2RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeoutMs?: number;
}

export interface H2Client {
  readonly session: http2.ClientHttp2Session;
  request(path: string, opts?: H2RequestOptions): Promise<H2Result>;
  close(): Promise<void>;
}

/** One h2 session to `origin` (https://127.0.0.1:port), trusting the CA files; fails if ALPN did not pick h2. */
export async function h2Connect(origin: string, caFiles: readonly string[], timeoutMs = 5000): Promise<H2Client> {
  const session = http2.connect(origin, { ca: caFiles.map((f) => readFileSync(f)) });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no h2 session with ${origin} within ${timeoutMs} ms`)), timeoutMs);
    session.once('connect', () => { clearTimeout(timer); resolve(); });
    session.once('error', (err) => { clearTimeout(timer); reject(err); });
  });
  // Later session errors surface on the streams that fail.
  session.on('error', () => undefined);
  return {
    session,
    request(path, opts = {}) {
      const method = opts.method ?? 'GET';
      return new Promise<H2Result>((resolve, reject) => {
        const stream = session.request({ ':method': method, ':path': path, ...opts.headers }, { endStream: opts.body === undefined });
        const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
        const chunks: Buffer[] = [];
        let head: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader = {};
        stream.on('response', (h) => { head = h; });
        stream.on('data', (c: Buffer) => chunks.push(c));
        let settled = false;
        const fail = (err: Error) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(err);
        };
        stream.on('error', fail);
        stream.on('close', () => fail(new Error(`h2 ${method} ${path}: stream closed before its end (code ${stream.rstCode ?? '?'})`)));
        stream.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const rawBody = Buffer.concat(chunks);
          const text = rawBody.toString('utf8');
          resolve({
            status: Number(head[':status'] ?? 0),
            headers: head,
            body: text,
            rawBody,
            streamId: stream.id ?? -1,
            json<T = unknown>(): T {
              try {
                return JSON.parse(text) as T;
              } catch {
                throw new Error(`h2 ${method} ${path} → ${String(head[':status'])}: body is not JSON: ${text.slice(0, 500)}`);
              }
            },
          });
        });
        if (opts.body !== undefined) stream.end(opts.body);
      });
    },
    close() {
      return new Promise<void>((resolve) => {
        if (session.closed || session.destroyed) return resolve();
        const timer = setTimeout(() => { session.destroy(); resolve(); }, 2000);
        session.close(() => { clearTimeout(timer); resolve(); });
      });
    },
  };
}
