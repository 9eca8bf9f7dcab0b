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
    const line = JSON.stringify({
      time: new Date().toISOString(),
      access: true,
      requestId: ctx.id,
      method,
      path: pathOf(url),
      status,
      route: ctx.route.name === '' ? null : ctx.route.name,
      tier: ctx.tier,
      keyId: ctx.keyId,
      clientIp: ctx.ip,
      durationMs: ms(performance.now() - ctx.started),
      upstreamMs: ctx.upstreamMs < 0 ? null : ms(ctx.upstreamMs),
      outcome,
      ...(ctx.shadowRefused === null ? {} : { shadowRefused: ctx.shadowRefused }),
    });
    this.opts.write(line + '\n');
  }
}
