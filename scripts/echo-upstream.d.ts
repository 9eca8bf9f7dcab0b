// Types for scripts/echo-upstream.js, so TypeScript tests can import it under `strict`.
import type { Server } from 'node:http';

/** Bytes of a request body echoed back; the rest is counted in `bodyBytes` only. */
export declare const MAX_ECHO_BYTES: number;

/** What the echo upstream answers (status 200, application/json). */
export interface EchoResponse {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  bodyBytes: number;
  bodyTruncated: boolean;
}

/** An echo server, not yet listening. */
export declare function createEchoServer(): Server;

/** Listen on `port` (default 3000; 0 = a free port) and `host` (default 0.0.0.0). */
export declare function startEchoUpstream(options?: { port?: number; host?: string }): Promise<Server>;
