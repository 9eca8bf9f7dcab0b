import type http from 'node:http';
import type { HeaderList } from '../errorResponse';

/*
 * Which headers cross the gateway, in each direction (pure: no I/O). Both directions work
 * on the raw [name, value, name, value, …] list Node parsed, and produce one for Node to
 * write as it is: no header map is built per request or response.
 */

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate'];
const HOP_SET = new Set(HOP_BY_HOP);

/**
 * Names dropped from a client's request on top of the hop-by-hop ones: Host (the upstream
 * gets its own), Expect (Node already answered the client's 100-continue),
 * Transfer-Encoding (Node has decoded the body; the upstream client frames it anew), ours,
 * and the forwarding headers we rewrite.
 */
const TIER_HEADER = 'x-tollgate-tier';
/** Ours (SPEC §10): a client's are replaced, never passed on beside ours. */
const KEY_ID_HEADER = 'x-tollgate-key-id';
const IDENTITY_HEADER = 'x-tollgate-identity';
const REQUEST_ID_HEADER = 'x-request-id';
const XFF = 'x-forwarded-for';
const XF_PORT = 'x-forwarded-port';
const XF_PROTO = 'x-forwarded-proto';
const XF_HOST = 'x-forwarded-host';
const REQUEST_ONLY = ['host', 'expect', 'transfer-encoding'];

/** A first-letter and length prefilter for a set of lower-case names. */
interface NameFilter {
  readonly first: ReadonlySet<number>;
  readonly lengths: ReadonlySet<number>;
}

function nameFilter(names: readonly string[]): NameFilter {
  return { first: new Set(names.map((n) => n.charCodeAt(0))), lengths: new Set(names.map((n) => n.length)) };
}

const RESPONSE_FILTER = nameFilter(HOP_BY_HOP);
const REQUEST_FILTER = nameFilter([...HOP_BY_HOP, ...REQUEST_ONLY]);
const LOWER_R = 0x72;
const LOWER_X = 0x78;

/**
 * Whether a raw header name can be one to look at, without lower-casing it: most names
 * (Accept, Content-Type, Date, …) are ruled out by their first letter and length, and
 * toLowerCase on every name of every request and response showed in the profile. With
 * `xr`, any name of 9+ letters starting with x or r passes too (X-RateLimit-*,
 * RateLimit-*, X-Forwarded-*, X-Tollgate-Tier).
 */
function mayMatch(name: string, filter: NameFilter, xr: boolean): boolean {
  const first = name.charCodeAt(0) | 0x20; // ASCII lower case
  if (xr && (first === LOWER_X || first === LOWER_R) && name.length >= 9) return true;
  return filter.first.has(first) && filter.lengths.has(name.length);
}

/** Client-sent rate-limit headers would let a caller spoof ours to the upstream. */
function isRateLimitHeader(name: string): boolean {
  return name.startsWith('x-ratelimit') || name.startsWith('ratelimit');
}

/** Extra hop-by-hop names listed in a Connection header; null when there are none. */
export function connectionListed(connection: string | string[] | undefined): string[] | null {
  if (typeof connection !== 'string' || connection === 'keep-alive' || connection === 'close') return null;
  let out: string[] | null = null;
  for (const name of connection.split(',')) {
    const n = name.trim().toLowerCase();
    if (n !== '' && n !== 'close' && n !== 'keep-alive') (out ??= []).push(n);
  }
  return out;
}

function appendValue(existing: string | undefined, value: string): string {
  return existing === undefined ? value : `${existing}, ${value}`;
}

/** The parts of a client request its upstream head is built from. */
export type RequestHeadIn = Pick<http.IncomingMessage, 'rawHeaders' | 'headers'>;

const COLON = 0x3a;

/** What the upstream is told about the client's connection. */
export interface ForwardedFor {
  /** The client socket's address. */
  readonly remoteAddress: string;
  /** The Host the upstream gets (the target's own). */
  readonly upstreamHost: string;
  /** The tier the request was admitted under (X-Tollgate-Tier). */
  readonly tier: string;
  /** The client's scheme: `https` on a TLS listener (X-Forwarded-Proto, and port 443 by default). */
  readonly proto: 'http' | 'https';
  /** X-Request-Id: the client's when valid, else generated. */
  readonly requestId: string;
  /** X-Tollgate-Key-Id (none for a request without a key). */
  readonly keyId: string | null;
  /** X-Tollgate-Identity, when the key has one. */
  readonly identity: string | null;
  /** The API key header (lower case) when FORWARD_API_KEY=false: it does not go on. */
  readonly dropKeyHeader: string | null;
}

/** Whether `name` (any case) is `lower`, without lower-casing it when the length differs. */
function isName(name: string, lower: string): boolean {
  return name.length === lower.length && name.toLowerCase() === lower;
}

/**
 * The upstream request head as a flat list: the client's headers in their own case and
 * order, without hop-by-hop ones, those its Connection lists, Host, Expect, client-sent
 * rate-limit headers and X-Tollgate-Tier; then Host (the target's), X-Forwarded-For/-Port/
 * -Proto with this hop appended (", "-joined, as nginx does), X-Forwarded-Host (the
 * client's, else its Host), X-Tollgate-Tier, X-Request-Id and X-Tollgate-Key-Id/-Identity
 * (a client's replaced), and without the API key header when `dropKeyHeader` names it
 * (FORWARD_API_KEY=false). A body's Content-Length stays; a chunked
 * body is chunked anew by the upstream client, so Transfer-Encoding goes. An h2 request's
 * pseudo-headers (:method, :path, :scheme, :authority) are not headers: they never go on,
 * and :authority stands for Host (h2 clients send it instead).
 */
export function requestHead(req: RequestHeadIn, fwd: ForwardedFor): string[] {
  const raw = req.rawHeaders;
  const listed = connectionListed(req.headers.connection);
  const out: string[] = [];
  let host: string | undefined;
  let xff: string | undefined;
  let xfPort: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  const drop = fwd.dropKeyHeader;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (drop !== null && isName(name, drop)) continue;
    if (name.charCodeAt(0) === COLON) {
      if (name === ':authority') host ??= value;
      continue;
    }
    if (listed !== null || mayMatch(name, REQUEST_FILTER, true)) {
      const lower = name.toLowerCase();
      if (HOP_SET.has(lower)) continue;
      if (lower === 'host') {
        host ??= value;
        continue;
      }
      if (lower === XFF) {
        xff = appendValue(xff, value);
        continue;
      }
      if (lower === XF_PORT) {
        xfPort = appendValue(xfPort, value);
        continue;
      }
      if (lower === XF_PROTO) {
        xfProto = appendValue(xfProto, value);
        continue;
      }
      if (lower === XF_HOST) {
        xfHost ??= value;
        continue;
      }
      if (lower === 'expect' || lower === 'transfer-encoding' || lower === TIER_HEADER || isRateLimitHeader(lower)) continue;
      if (lower === REQUEST_ID_HEADER || lower === KEY_ID_HEADER || lower === IDENTITY_HEADER) continue;
      if (listed !== null && listed.includes(lower)) continue;
    }
    out.push(name, value);
  }
  const port = host === undefined ? null : /:(\d+)$/.exec(host);
  out.push(
    'Host', fwd.upstreamHost,
    'X-Forwarded-For', appendValue(xff, fwd.remoteAddress),
    'X-Forwarded-Port', appendValue(xfPort, port !== null ? port[1] : fwd.proto === 'https' ? '443' : '80'),
    'X-Forwarded-Proto', appendValue(xfProto, fwd.proto),
    'X-Forwarded-Host', xfHost ?? host ?? '',
    'X-Tollgate-Tier', fwd.tier,
    'X-Request-Id', fwd.requestId,
  );
  if (fwd.keyId !== null) out.push('X-Tollgate-Key-Id', fwd.keyId);
  if (fwd.identity !== null) out.push('X-Tollgate-Identity', fwd.identity);
  return out;
}

/**
 * Whether the request has a body to stream to the upstream. An h2 request says so by its
 * framing, not its headers (Content-Length is optional there): `endOfStream` is whether
 * its HEADERS frame ended the stream (undefined over HTTP/1).
 */
export function requestHasBody(req: Pick<http.IncomingMessage, 'headers'>, endOfStream?: boolean): boolean {
  if (endOfStream !== undefined) return !endOfStream;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * For a WebSocket upgrade (carried by http-proxy, which reads `req.headers`): drops
 * hop-by-hop headers except Connection and Upgrade, and client rate-limit headers, in place.
 */
export function cleanUpgradeHeaders(req: http.IncomingMessage, fwd: Pick<ForwardedFor, 'tier' | 'requestId' | 'keyId' | 'identity' | 'dropKeyHeader'>): void {
  const headers = req.headers;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (!mayMatch(raw[i], RESPONSE_FILTER, true)) continue;
    const name = raw[i].toLowerCase();
    if ((HOP_SET.has(name) && name !== 'connection' && name !== 'upgrade') || isRateLimitHeader(name)) delete headers[name];
  }
  if (fwd.dropKeyHeader !== null) delete headers[fwd.dropKeyHeader];
  headers[TIER_HEADER] = fwd.tier;
  headers[REQUEST_ID_HEADER] = fwd.requestId;
  delete headers[KEY_ID_HEADER];
  delete headers[IDENTITY_HEADER];
  if (fwd.keyId !== null) headers[KEY_ID_HEADER] = fwd.keyId;
  if (fwd.identity !== null) headers[IDENTITY_HEADER] = fwd.identity;
}

/** A raw header name or value as the upstream client gives it: bytes, read as Node's parser reads them. */
function text(raw: Buffer | string): string {
  return typeof raw === 'string' ? raw : raw.toString('latin1');
}

/** The list without the headers `names` (lower case) name. */
function withoutNames(list: readonly string[], names: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    if (!names.includes(list[i].toLowerCase())) out.push(list[i], list[i + 1]);
  }
  return out;
}

/**
 * The response head for the client as one flat [name, value, …] list, from the upstream's
 * raw one: its headers in their own case and order (repeats such as Set-Cookie kept),
 * without hop-by-hop ones, those named in its Connection, Transfer-Encoding when `dropTE`
 * (an HTTP/1.0 client cannot read chunks, and h2 forbids the header: Node throws on it),
 * its X-Request-Id (ours goes on), and (unless passed through) its rate-limit headers;
 * then ours. Given to writeHead as a
 * list, Node writes it without building a header map per response. Connection is left to
 * Node (keep-alive or close as the client asked), except "close" when `closing` (draining
 * HTTP/1: no client may reuse a socket we are about to close; h2 drains by GOAWAY instead).
 */
export function responseHead(raw: readonly (Buffer | string)[], dropTE: boolean, stripRateLimit: boolean, ours: HeaderList | null | undefined, closing: boolean): string[] {
  let out: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = text(raw[i]);
    if (dropTE || mayMatch(name, RESPONSE_FILTER, true)) {
      const lower = name.toLowerCase();
      if (lower === 'connection') connection = appendValue(connection, text(raw[i + 1]));
      if (HOP_SET.has(lower) || (stripRateLimit && isRateLimitHeader(lower))) continue;
      // Ours is the one the client gets (an upstream that echoes it would double it).
      if (lower === REQUEST_ID_HEADER) continue;
      if (dropTE && lower === 'transfer-encoding') continue;
    }
    out.push(name, text(raw[i + 1]));
  }
  // Names a Connection header lists are rare: only then is the list walked again.
  const listed = connectionListed(connection);
  if (listed !== null) out = withoutNames(out, listed);
  if (ours) for (const [k, v] of ours) out.push(k, v);
  if (closing) out.push('Connection', 'close');
  return out;
}
