import http from 'node:http';
import https from 'node:https';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body decoded as UTF-8. */
  body: string;
  /** The body as received, for binary or hashed comparisons. */
  rawBody: Buffer;
  json<T = unknown>(): T;
}

export interface HttpRequestOptions {
  method?: string;
  /** Sent as given: any name (X-Forwarded-For, X-RateLimit-Limit, Host, ...); an array repeats the header. */
  headers?: Record<string, string | string[]>;
  body?: string | Buffer | NodeJS.ReadableStream;
  /** For an https:// URL, an https.Agent that trusts the test CA (test/support/tlsClient.ts). */
  agent?: http.Agent;
  /** Bound on the whole exchange, head and body. */
  timeoutMs?: number;
}

// Keep-alive so a burst of hundreds of requests does not exhaust ephemeral ports; idle
// sockets are unref'd by the agent, so it never keeps jest alive. Node also honours the
// server's Keep-Alive timeout hint, which avoids reusing a socket the server is closing.
export const defaultAgent = new http.Agent({ keepAlive: true, maxSockets: 1024 });

const DEFAULT_TIMEOUT_MS = 20000;

function hasHeader(headers: Record<string, string | string[]>, name: string): boolean {
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}

export async function httpRequest(url: string, opts: HttpRequestOptions = {}): Promise<HttpResult> {
  const method = opts.method ?? 'GET';
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const headers: Record<string, string | string[]> = { ...opts.headers };
  const body = opts.body;
  if ((typeof body === 'string' || Buffer.isBuffer(body)) && !hasHeader(headers, 'content-length')) {
    headers['content-length'] = String(Buffer.byteLength(body));
  }

  return new Promise<HttpResult>((resolve, reject) => {
    let settled = false;
    // Assigned below, after the handlers that clear it are defined.
    // eslint-disable-next-line prefer-const
    let timer: NodeJS.Timeout | undefined;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      error.message = `${method} ${url}: ${error.message}`;
      reject(error);
    };

    const secure = url.startsWith('https:');
    const request = secure ? https.request : http.request;
    const req = request(new URL(url), { method, headers, agent: opts.agent ?? (secure ? undefined : defaultAgent) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', fail);
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const rawBody = Buffer.concat(chunks);
        const text = rawBody.toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: text,
          rawBody,
          json<T = unknown>(): T {
            try {
              return JSON.parse(text) as T;
            } catch {
              throw new Error(`${method} ${url} → ${res.statusCode ?? 0}: body is not JSON: ${text.slice(0, 500)}`);
            }
          },
        });
      });
    });
    timer = setTimeout(() => {
      const error = new Error(`no complete response within ${timeoutMs} ms`);
      fail(Object.assign(error, { code: 'ETIMEDOUT' }));
      req.destroy(error);
    }, timeoutMs);
    req.on('error', fail);

    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
      req.end(body);
    } else {
      body.on('error', (error: Error) => req.destroy(error));
      body.pipe(req);
    }
  });
}

/** Runs fn(0) … fn(n - 1) with at most `concurrency` in flight; results are in index order. */
export async function burst(
  n: number,
  concurrency: number,
  fn: (i: number) => Promise<HttpResult>,
): Promise<HttpResult[]> {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be ≥ 1, got ${concurrency}`);
  const results = new Array<HttpResult>(n);
  let next = 0;
  let failure: { error: unknown } | undefined;
  // On the first failure no new call starts, but the ones in flight are awaited, so none
  // outlives the test that started it.
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < n) {
      const i = next++;
      try {
        results[i] = await fn(i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(n, 1)) }, worker));
  if (failure !== undefined) throw failure.error;
  return results;
}

export function countStatuses(results: readonly HttpResult[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const { status } of results) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}
