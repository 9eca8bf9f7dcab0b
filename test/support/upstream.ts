import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { closeAtFileEnd } from './leftovers';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyLength: number;
  bodySha256: string;
}

export interface Upstream {
  url: string;
  port: number;
  /** Every request in the order its body finished (upgrades and /reset on arrival). */
  received: ReceivedRequest[];
  /** TCP connections accepted so far. */
  connections(): number;
  /** TCP connections open now. */
  open(): number;
  close(): Promise<void>;
}

const EMPTY_SHA256 = createHash('sha256').digest('hex');
const CHUNK = Buffer.alloc(64 * 1024, 'a');
const CLOSE_TIMEOUT_MS = 5000;

function intParam(url: URL, name: string): number {
  const value = Number(url.searchParams.get(name) ?? '0');
  return Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

function sendJson(res: http.ServerResponse, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(200, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Writes `bytes` bytes of 'a', honouring backpressure so a slow reader is never buffered for. */
function streamBytes(res: http.ServerResponse, bytes: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes });
  let left = bytes;
  const pump = (): void => {
    while (left > 0 && !res.destroyed) {
      const size = Math.min(left, CHUNK.length);
      left -= size;
      if (!res.write(size === CHUNK.length ? CHUNK : CHUNK.subarray(0, size))) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  pump();
}

/**
 * An HTTP + WebSocket server on 127.0.0.1:0 that behaves by path:
 * - default: 200 JSON {method, url, headers, bodyLength, bodySha256}
 * - /slow?ms=N: the same, with the head sent N ms after the request arrived
 * - /hang: reads the body, never answers
 * - /reset: destroys the socket without a response
 * - /upstream-ratelimit: the echo with upstream X-RateLimit-*, RateLimit and RateLimit-Policy headers
 * - /early-hints: an interim 103 Early Hints, then the default echo
 * - /big?bytes=N: N bytes of 'a'
 * - /cut?bytes=N: announces N bytes of 'a', sends half, then destroys the socket
 * - any WebSocket upgrade: echoes each message back
 */
export interface UpstreamOptions {
  /** How long an idle kept-alive connection stays open (Node's default: 5 s). */
  readonly keepAliveMs?: number;
}

export async function startUpstream(opts: UpstreamOptions = {}): Promise<Upstream> {
  const received: ReceivedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream.invalid');
    const arrivedAt = Date.now();
    const base = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };

    if (url.pathname === '/reset') {
      received.push({ ...base, bodyLength: 0, bodySha256: EMPTY_SHA256 });
      req.socket.destroy();
      return;
    }

    // Hashing chunk by chunk keeps a multi-megabyte upload out of memory, which is the
    // point of the tests that stream bodies through the gateway.
    const hash = createHash('sha256');
    let bodyLength = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bodyLength += chunk.length;
    });
    req.on('error', () => {
      // The client went away mid-body; nothing to answer.
    });
    req.on('end', () => {
      const record: ReceivedRequest = { ...base, bodyLength, bodySha256: hash.digest('hex') };
      received.push(record);
      switch (url.pathname) {
        case '/hang':
          return;
        case '/slow': {
          const delay = Math.max(0, intParam(url, 'ms') - (Date.now() - arrivedAt));
          const timer = setTimeout(() => {
            timers.delete(timer);
            if (!res.destroyed) sendJson(res, record);
          }, delay);
          timers.add(timer);
          res.on('close', () => {
            clearTimeout(timer);
            timers.delete(timer);
          });
          return;
        }
        case '/upstream-ratelimit':
          sendJson(res, record, {
            'x-ratelimit-limit': '999',
            'x-ratelimit-remaining': '998',
            'x-ratelimit-reset': '1',
            ratelimit: '"up";r=1;t=1',
            'ratelimit-policy': '"up";q=999;w=1',
          });
          return;
        case '/response-head': {
          // Repeated headers, a Connection-listed hop-by-hop one, a custom reason phrase and a
          // chunked body: what the gateway must pass through (or drop) on the way back.
          res.writeHead(201, 'Made It', [
            'Set-Cookie', 'a=1; Path=/',
            'Set-Cookie', 'b=2; Path=/',
            'Connection', 'keep-alive, X-Upstream-Hop',
            'X-Upstream-Hop', 'secret',
            'Proxy-Authenticate', 'Basic',
            'X-Custom', 'kept',
          ]);
          res.write('chunk-one,');
          res.end('chunk-two');
          return;
        }
        case '/early-hints':
          // An interim 103 before the final head: the client must get the final one.
          res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' }, () => sendJson(res, record));
          return;
        case '/big':
          streamBytes(res, intParam(url, 'bytes'));
          return;
        case '/cut': {
          const bytes = intParam(url, 'bytes');
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes });
          res.write(Buffer.alloc(Math.floor(bytes / 2), 'a'), () => res.destroy());
          return;
        }
        default:
          sendJson(res, record);
      }
    });
  });

  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    socket.on('error', () => {
      // A client that vanishes is expected in proxy tests.
    });
  });
  server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
    received.push({
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      bodyLength: 0,
      bodySha256: EMPTY_SHA256,
    });
    wss.handleUpgrade(req, socket, head, (client) => wss.emit('connection', client, req));
  });

  if (opts.keepAliveMs !== undefined) server.keepAliveTimeout = opts.keepAliveMs;
  let accepted = 0;
  let open = 0;
  server.on('connection', (socket) => {
    accepted += 1;
    open += 1;
    socket.once('close', () => { open -= 1; });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const upstream: Upstream = {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    connections: () => accepted,
    open: () => open,
    async close() {
      forget();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      // Upgraded sockets are no longer the HTTP server's, so closeAllConnections misses them.
      for (const client of wss.clients) client.terminate();
      wss.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`upstream ${port} did not close within ${CLOSE_TIMEOUT_MS} ms`)),
          CLOSE_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([closed, timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
  // A test file that lost the handle (its set-up failed half-way) must not keep Jest alive.
  const forget = closeAtFileEnd(() => upstream.close());
  return upstream;
}
