import type { ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody, type ErrorReply } from './errors';

/** Response headers as [name, value] pairs. */
export type HeaderList = Array<[string, string]>;

/**
 * Writes a JSON error; never a stack trace. Safe to call when the head was already sent.
 * `requestId` (proxy port): in the body and as X-Request-Id.
 */
export function sendError(res: ServerResponse, err: ErrorReply, headers?: HeaderList, requestId?: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(err, requestId);
  // One writeHead with a flat [name, value, …] list: no header map built per refusal.
  const head: string[] = ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body))];
  if (requestId !== undefined) head.push('X-Request-Id', requestId);
  if (headers) for (const [k, v] of headers) head.push(k, v);
  res.writeHead(err.status, head);
  res.end(body);
}

/** A refused WebSocket upgrade still gets a real HTTP response with the JSON body. */
export function sendErrorOnSocket(socket: Duplex, err: ErrorReply, headers?: HeaderList, requestId?: string): void {
  if (socket.destroyed) return;
  const body = errorBody(err, requestId);
  let head = `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\n`
    + 'Content-Type: application/json\r\n'
    + `Content-Length: ${Buffer.byteLength(body)}\r\n`
    + 'Connection: close\r\n';
  if (requestId !== undefined) head += `X-Request-Id: ${requestId}\r\n`;
  if (headers) for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  socket.end(`${head}\r\n${body}`);
}
