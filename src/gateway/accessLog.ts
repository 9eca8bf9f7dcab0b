import type { RequestContext } from './requestContext';
import type { JsonLineBatch } from '../observability/jsonLineBatch';
import { pathEnd, pathOf } from '../routes/matcher';

/*
 * The access log (SPEC §10): one JSON line per request on stdout, with the fields the SPEC
 * names and the route's name, never a key (only its record id) and never a query string.
 * ACCESS_LOG_SAMPLE keeps that share of the 2xx/3xx lines; every other status is logged.
 * The line is written as bytes into the batch of observability/jsonLineBatch.ts, which goes
 * to the asynchronous stdout writer, so writing it never blocks the event loop.
 */

export interface AccessLogOptions {
  readonly lines: JsonLineBatch;
  /** 0–1: the share of 2xx/3xx lines kept. */
  readonly sample: number;
  readonly random?: () => number;
}

/**
 * The most a line takes besides its strings' characters: the fixed text (field names,
 * punctuation, literals: 173 bytes), the time (24), the strings' quotes (18), the status and
 * two durations (at most 20 each).
 */
const FIXED_BYTES = 320;

export class AccessLog {
  private readonly random: () => number;

  constructor(private readonly opts: AccessLogOptions) {
    this.random = opts.random ?? Math.random;
  }

  /**
   * Writes the request's line once (later calls for the same request are ignored);
   * `durationMs` is the one the request-duration metric got.
   */
  write(ctx: RequestContext, method: string, url: string, status: number, outcome: string, durationMs: number): void {
    if (ctx.logged) return;
    ctx.logged = true;
    if (status < 400 && status >= 200 && this.opts.sample < 1 && this.random() >= this.opts.sample) return;
    // Only an absolute-form target ("GET http://host/p") needs its path parsed out.
    let path = url;
    let end = pathEnd(url);
    if (url.charCodeAt(0) !== 0x2f) {
      path = pathOf(url);
      end = path.length;
    }
    const route = ctx.route.name;
    const keyId = ctx.keyId;
    const shadow = ctx.shadowRefused;
    const out = this.opts.lines;
    // Every string at its worst (6 bytes per UTF-16 unit escaped) plus the fixed text.
    out.begin(FIXED_BYTES + 6 * (ctx.id.length + method.length + end + route.length + ctx.tier.length
      + (keyId === null ? 0 : keyId.length) + ctx.ip.length + outcome.length + (shadow === null ? 0 : shadow.length)));
    out.ascii('{"time":"');
    writeTime(out);
    out.ascii('","access":true,"requestId":');
    out.string(ctx.id);
    out.ascii(',"method":');
    out.string(method);
    out.ascii(',"path":');
    out.string(path, end);
    out.ascii(',"status":');
    out.digits(status);
    out.ascii(',"route":');
    if (route === '') out.ascii('null');
    else out.string(route);
    out.ascii(',"tier":');
    out.string(ctx.tier);
    out.ascii(',"keyId":');
    if (keyId === null) out.ascii('null');
    else out.string(keyId);
    out.ascii(',"clientIp":');
    out.string(ctx.ip);
    out.ascii(',"durationMs":');
    out.millis(durationMs);
    out.ascii(',"upstreamMs":');
    if (ctx.upstreamMs < 0) out.ascii('null');
    else out.millis(ctx.upstreamMs);
    out.ascii(',"outcome":');
    out.string(outcome);
    if (shadow !== null) {
      out.ascii(',"shadowRefused":');
      out.string(shadow);
    }
    out.ascii('}');
    out.end();
  }
}

let lastSecond = -1;
let secondPrefix = '';

/**
 * The ISO-8601 time now ("2026-12-06T04:05:06.789Z"): the date and time up to the second made
 * once per second, the milliseconds added per line (a Date and toISOString per line measured
 * as much as the rest of the line).
 */
function writeTime(out: JsonLineBatch): void {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    secondPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  out.ascii(secondPrefix);
  out.digits(now - second * 1000, 3);
  out.ascii('Z');
}
