import type { RequestContext } from './requestContext';
import { pathOf } from '../routes/matcher';

/*
 * The access log (SPEC §10): one JSON line per request on stdout, with the fields the SPEC
 * names and the route's name, never a key (only its record id) and never a query string.
 * ACCESS_LOG_SAMPLE keeps that share of the 2xx/3xx lines; every other status is logged.
 * The line is built here and handed to the asynchronous stdout writer of
 * observability/logger.ts, so writing it never blocks the event loop.
 */

export interface AccessLogOptions {
  readonly write: (line: string) => void;
  /** 0–1: the share of 2xx/3xx lines kept. */
  readonly sample: number;
  readonly random?: () => number;
}

/**
 * Milliseconds with up to 3 decimals, written from integer microseconds: turning the
 * rounded double into text (V8's shortest-form FastDtoa) showed in the gateway's profile.
 */
function millis(x: number): string {
  const us = Math.round(x * 1000);
  if (!(us >= 0)) return String(us / 1000);
  const whole = Math.floor(us / 1000);
  const frac = us - whole * 1000;
  return frac === 0 ? String(whole) : `${whole}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

/** Printable ASCII without `"` and `\`: a JSON string as it is, no escaping needed. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A JSON string literal; the test costs half of JSON.stringify, which only the rare value with escapes still takes. */
function quoted(s: string): string {
  return PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

export class AccessLog {
  private readonly random: () => number;

  constructor(private readonly opts: AccessLogOptions) {
    this.random = opts.random ?? Math.random;
  }

  /** Writes the request's line once (later calls for the same request are ignored). */
  write(ctx: RequestContext, method: string, url: string, status: number, outcome: string): void {
    if (ctx.logged) return;
    ctx.logged = true;
    if (status < 400 && status >= 200 && this.opts.sample < 1 && this.random() >= this.opts.sample) return;
    // Built by hand in a fixed order (JSON.stringify of an object measured twice the cost);
    // every string goes through `quoted` for its escaping.
    const route = ctx.route.name === '' ? 'null' : quoted(ctx.route.name);
    const upstreamMs = ctx.upstreamMs < 0 ? 'null' : millis(ctx.upstreamMs);
    const shadow = ctx.shadowRefused === null ? '' : `,"shadowRefused":"${ctx.shadowRefused}"`;
    this.opts.write(`{"time":"${isoNow()}","access":true,"requestId":${quoted(ctx.id)},"method":${quoted(method)},"path":${quoted(pathOf(url))},"status":${status},"route":${route},"tier":${quoted(ctx.tier)},"keyId":${ctx.keyId === null ? 'null' : quoted(ctx.keyId)},"clientIp":${quoted(ctx.ip)},"durationMs":${millis(performance.now() - ctx.started)},"upstreamMs":${upstreamMs},"outcome":"${outcome}"${shadow}}\n`);
  }
}

let lastSecond = -1;
let secondPrefix = '';

/**
 * The ISO-8601 time now ("2026-12-06T04:05:06.789Z"): the date and time up to the second made
 * once per second, the milliseconds added per line (a Date and toISOString per line measured
 * as much as the rest of the line).
 */
function isoNow(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    secondPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const milli = now - second * 1000;
  return `${secondPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}
