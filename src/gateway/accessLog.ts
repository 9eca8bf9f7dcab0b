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

function ms(x: number): number {
  return Math.round(x * 1000) / 1000;
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
    // every string a client can influence (method, path, request id) goes through
    // JSON.stringify for its escaping; the rest are ours (ids, tier and route names, numbers).
    const route = ctx.route.name === '' ? 'null' : JSON.stringify(ctx.route.name);
    const upstreamMs = ctx.upstreamMs < 0 ? 'null' : String(ms(ctx.upstreamMs));
    const shadow = ctx.shadowRefused === null ? '' : `,"shadowRefused":"${ctx.shadowRefused}"`;
    this.opts.write(`{"time":"${isoNow()}","access":true,"requestId":${JSON.stringify(ctx.id)},"method":${JSON.stringify(method)},"path":${JSON.stringify(pathOf(url))},"status":${status},"route":${route},"tier":${JSON.stringify(ctx.tier)},"keyId":${ctx.keyId === null ? 'null' : JSON.stringify(ctx.keyId)},"clientIp":${JSON.stringify(ctx.ip)},"durationMs":${ms(performance.now() - ctx.started)},"upstreamMs":${upstreamMs},"outcome":"${outcome}"${shadow}}\n`);
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
