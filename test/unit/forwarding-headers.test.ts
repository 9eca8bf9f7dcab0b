import type { IncomingHttpHeaders } from 'node:http';
import { requestHasBody, requestHead, responseHead, type RequestHeadIn } from '../../src/proxy/forwardingHeaders';

/* Which headers cross the gateway, each way (pure; the e2e proxy tests cover the wire). */

/** A parsed request as Node gives it: the raw list, and the lower-cased map (Connection only is read). */
function parsed(raw: string[]): RequestHeadIn {
  const headers: IncomingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name === 'connection') headers.connection = raw[i + 1];
    if (name === 'content-length') headers['content-length'] = raw[i + 1];
    if (name === 'transfer-encoding') headers['transfer-encoding'] = raw[i + 1];
  }
  return { rawHeaders: raw, headers };
}

const FWD = { remoteAddress: '203.0.113.9', upstreamHost: 'backend:8080', tier: 'pro', proto: 'http', requestId: 'req-1', keyId: null, identity: null, dropKeyHeader: null } as const;

/** The list as [name, value] pairs, for readable expectations. */
function pairs(list: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < list.length; i += 2) out.push([list[i], list[i + 1]]);
  return out;
}

describe('requestHead', () => {
  test('client headers keep their case and order; ours follow', () => {
    const head = requestHead(parsed(['Host', 'api.example.com', 'Accept', '*/*', 'X-Api-Key', 'k', 'x-custom', 'a', 'X-Custom', 'b']), FWD);
    expect(pairs(head)).toEqual([
      ['Accept', '*/*'], ['X-Api-Key', 'k'], ['x-custom', 'a'], ['X-Custom', 'b'],
      ['Host', 'backend:8080'],
      ['X-Forwarded-For', '203.0.113.9'],
      ['X-Forwarded-Port', '80'],
      ['X-Forwarded-Proto', 'http'],
      ['X-Forwarded-Host', 'api.example.com'],
      ['X-Tollgate-Tier', 'pro'],
      ['X-Request-Id', 'req-1'],
    ]);
  });

  test('SPEC §10: client-sent X-Request-Id, X-Tollgate-Key-Id and -Identity are replaced by ours; FORWARD_API_KEY=false drops the key header', () => {
    const head = requestHead(parsed([
      'X-Request-Id', 'client-id', 'x-tollgate-key-id', 'spoofed', 'X-Tollgate-Identity', 'spoofed', 'X-Api-Key', 'secret_key_123', 'Accept', 'a',
    ]), { ...FWD, requestId: 'client-id', keyId: 'k_1', identity: 'acme', dropKeyHeader: 'x-api-key' });
    const list = pairs(head);
    expect(list.filter(([n]) => n.toLowerCase() === 'x-tollgate-key-id')).toEqual([['X-Tollgate-Key-Id', 'k_1']]);
    expect(list.filter(([n]) => n.toLowerCase() === 'x-tollgate-identity')).toEqual([['X-Tollgate-Identity', 'acme']]);
    expect(list.filter(([n]) => n.toLowerCase() === 'x-request-id')).toEqual([['X-Request-Id', 'client-id']]);
    expect(list.some(([n, v]) => n.toLowerCase() === 'x-api-key' || v === 'secret_key_123')).toBe(false);
    const kept = pairs(requestHead(parsed(['X-Api-Key', 'secret_key_123', 'X-Tollgate-Identity', 'spoofed']), FWD));
    expect(kept).toContainEqual(['X-Api-Key', 'secret_key_123']);
    expect(kept.some(([n]) => n.toLowerCase() === 'x-tollgate-identity' || n.toLowerCase() === 'x-tollgate-key-id')).toBe(false);
  });

  test('hop-by-hop headers, those Connection lists, Expect, and client rate-limit and tier headers are dropped', () => {
    const head = requestHead(parsed([
      'Host', 'h', 'Connection', 'keep-alive, X-Hop', 'X-Hop', 'secret', 'Keep-Alive', 'timeout=5', 'TE', 'trailers',
      'Proxy-Authorization', 'Basic x', 'Upgrade', 'h2c', 'Trailer', 'x', 'Proxy-Connection', 'keep-alive',
      'Expect', '100-continue', 'X-RateLimit-Limit', '1', 'RateLimit-Policy', 'p', 'ratelimit', 'r', 'X-Tollgate-Tier', 'enterprise',
      'Accept', 'a',
    ]), FWD);
    const names = pairs(head).map(([n]) => n);
    expect(names).toEqual(['Accept', 'Host', 'X-Forwarded-For', 'X-Forwarded-Port', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'X-Tollgate-Tier', 'X-Request-Id']);
    expect(pairs(head).find(([n]) => n === 'X-Tollgate-Tier')?.[1]).toBe('pro');
  });

  test('forwarding headers already present are appended to (", "-joined, repeats merged); X-Forwarded-Host is kept', () => {
    const head = requestHead(parsed([
      'Host', 'api.example.com:8443', 'X-Forwarded-For', '198.51.100.1', 'x-forwarded-for', '198.51.100.2',
      'X-Forwarded-Port', '443', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'public.example.com',
    ]), FWD);
    const map = new Map(pairs(head));
    expect(map.get('X-Forwarded-For')).toBe('198.51.100.1, 198.51.100.2, 203.0.113.9');
    expect(map.get('X-Forwarded-Port')).toBe('443, 8443');
    expect(map.get('X-Forwarded-Proto')).toBe('https, http');
    expect(map.get('X-Forwarded-Host')).toBe('public.example.com');
  });

  test('X-Forwarded-Port comes from the Host header, 80 without one; an IPv6 Host without a port is not misread', () => {
    const port = (host: string | null): string | undefined => {
      const raw = host === null ? [] : ['Host', host];
      return new Map(pairs(requestHead(parsed(raw), FWD))).get('X-Forwarded-Port');
    };
    expect(port('a.example:3000')).toBe('3000');
    expect(port('a.example')).toBe('80');
    expect(port('[2001:db8::1]')).toBe('80');
    expect(port('[2001:db8::1]:9000')).toBe('9000');
    expect(port(null)).toBe('80');
  });

  test('Content-Length of a body stays; Transfer-Encoding goes (the upstream client frames a chunked body anew)', () => {
    const framing = (raw: string[]): Array<[string, string]> => pairs(requestHead(parsed(raw), FWD)).filter(([n]) => /^(content-length|transfer-encoding)$/i.test(n));
    expect(framing(['content-length', '5'])).toEqual([['content-length', '5']]);
    expect(framing(['Transfer-Encoding', 'chunked'])).toEqual([]);
    expect(framing([])).toEqual([]);
  });
});

describe('requestHead over TLS and h2', () => {
  const TLS = { ...FWD, proto: 'https' } as const;

  test('on a TLS listener: X-Forwarded-Proto https, X-Forwarded-Port 443 unless Host names one', () => {
    const map = (raw: string[]) => new Map(pairs(requestHead(parsed(raw), TLS)));
    expect(map(['Host', 'api.example.com']).get('X-Forwarded-Proto')).toBe('https');
    expect(map(['Host', 'api.example.com']).get('X-Forwarded-Port')).toBe('443');
    expect(map(['Host', 'api.example.com:8443']).get('X-Forwarded-Port')).toBe('8443');
    expect(map(['X-Forwarded-Proto', 'https', 'Host', 'a']).get('X-Forwarded-Proto')).toBe('https, https');
  });

  test('h2 pseudo-headers are not forwarded; :authority stands for Host (X-Forwarded-Host, port)', () => {
    const head = requestHead(parsed([':method', 'POST', ':path', '/v1/x?q=1', ':authority', 'api.example.com:8443', ':scheme', 'https', 'content-type', 'text/plain', 'x-api-key', 'k']), TLS);
    expect(pairs(head)).toEqual([
      ['content-type', 'text/plain'],
      ['x-api-key', 'k'],
      ['Host', 'backend:8080'],
      ['X-Forwarded-For', '203.0.113.9'],
      ['X-Forwarded-Port', '8443'],
      ['X-Forwarded-Proto', 'https'],
      ['X-Forwarded-Host', 'api.example.com:8443'],
      ['X-Tollgate-Tier', 'pro'],
      ['X-Request-Id', 'req-1'],
    ]);
  });

  test('h2: :authority wins over a host header sent as well', () => {
    const head = new Map(pairs(requestHead(parsed([':authority', 'a.example', 'host', 'b.example']), TLS)));
    expect(head.get('X-Forwarded-Host')).toBe('a.example');
  });
});

describe('requestHasBody', () => {
  test('a body is streamed for a positive Content-Length or any Transfer-Encoding', () => {
    const has = (headers: IncomingHttpHeaders): boolean => requestHasBody({ headers });
    expect(has({})).toBe(false);
    expect(has({ 'content-length': '0' })).toBe(false);
    expect(has({ 'content-length': '12' })).toBe(true);
    expect(has({ 'transfer-encoding': 'chunked' })).toBe(true);
  });

  test('h2: the framing decides, Content-Length is optional there', () => {
    expect(requestHasBody({ headers: {} }, false)).toBe(true);
    expect(requestHasBody({ headers: { 'content-length': '12' } }, true)).toBe(false);
  });
});

describe('responseHead', () => {
  /** As undici gives it: names and values as bytes. */
  const upstream = (raw: string[]): Buffer[] => raw.map((x) => Buffer.from(x, 'latin1'));

  test('hop-by-hop and Connection-listed headers are dropped; repeats kept; ours appended', () => {
    const head = responseHead(
      upstream(['Set-Cookie', 'a=1', 'Connection', 'keep-alive, X-Hop', 'X-Hop', 's', 'Keep-Alive', 'timeout=5', 'Set-Cookie', 'b=2', 'Content-Length', '2']),
      false, true, [['X-RateLimit-Limit', '10']], false,
    );
    expect(pairs(head)).toEqual([['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['Content-Length', '2'], ['X-RateLimit-Limit', '10']]);
  });

  test('a header named by Connection is dropped wherever it stands, also before Connection or across two Connection lines', () => {
    const head = responseHead(upstream(['X-Early', 'e', 'Connection', 'X-Early', 'X-Late', 'l', 'connection', 'x-late', 'Date', 'd']), false, true, null, false);
    expect(pairs(head)).toEqual([['Date', 'd']]);
  });

  test('upstream rate-limit headers go unless passed through; Transfer-Encoding never reaches an HTTP/1.0 client', () => {
    const raw = ['X-RateLimit-Limit', '999', 'Transfer-Encoding', 'chunked'];
    expect(pairs(responseHead(upstream(raw), false, true, null, false))).toEqual([['Transfer-Encoding', 'chunked']]);
    expect(pairs(responseHead(upstream(raw), false, false, null, false))).toEqual([['X-RateLimit-Limit', '999'], ['Transfer-Encoding', 'chunked']]);
    expect(pairs(responseHead(upstream(raw), true, false, null, false))).toEqual([['X-RateLimit-Limit', '999']]);
  });

  test('while draining the client is told Connection: close', () => {
    expect(pairs(responseHead(upstream([]), false, true, null, true))).toEqual([['Connection', 'close']]);
  });
});
