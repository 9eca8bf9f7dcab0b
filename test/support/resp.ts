import net from 'node:net';

// A one-shot RESP2 client for the harness's own probes (PING, INFO, CLUSTER INFO,
// SENTINEL ...). ioredis would add its own INFO/CLIENT commands on every connect and
// show up in the commandstats that tests assert on.

export type RespReply = string | number | null | Error | RespReply[];

interface Parsed {
  value: RespReply;
  end: number;
}

function parseReply(buf: Buffer, start: number): Parsed | undefined {
  if (start >= buf.length) return undefined;
  const lineEnd = buf.indexOf('\r\n', start);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[start] ?? 0);
  const line = buf.toString('utf8', start + 1, lineEnd);
  const after = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: after };
    case '-':
      return { value: new Error(line), end: after };
    case ':':
      return { value: Number(line), end: after };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: after };
      if (buf.length < after + length + 2) return undefined;
      return { value: buf.toString('utf8', after, after + length), end: after + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: after };
      const items: RespReply[] = [];
      let position = after;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, position);
        if (item === undefined) return undefined;
        items.push(item.value);
        position = item.end;
      }
      return { value: items, end: position };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

function encode(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`;
}

export interface RedisCommandOptions {
  host?: string;
  password?: string;
  timeoutMs?: number;
}

/**
 * Opens a connection, sends one command (after AUTH when a password is given), returns the
 * reply and closes. An error reply rejects with the server's message; socket errors keep
 * their `code` (ECONNREFUSED, ...).
 */
export async function redisCommand(
  port: number,
  args: readonly string[],
  opts: RedisCommandOptions = {},
): Promise<RespReply> {
  const host = opts.host ?? '127.0.0.1';
  const timeoutMs = opts.timeoutMs ?? 2000;
  const commands = opts.password !== undefined ? [['AUTH', opts.password], args] : [args];
  return new Promise<RespReply>((resolve, reject) => {
    const socket = net.connect({ port, host });
    let buffer = Buffer.alloc(0);
    let offset = 0;
    const replies: RespReply[] = [];
    let settled = false;
    const finish = (error: Error | undefined, value?: RespReply): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve(value ?? null);
    };
    socket.setTimeout(timeoutMs, () =>
      finish(new Error(`redis ${host}:${port} did not answer ${args[0] ?? ''} within ${timeoutMs} ms`)),
    );
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error(`redis ${host}:${port} closed the connection before answering`)));
    socket.on('connect', () => socket.write(commands.map(encode).join('')));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      try {
        for (let reply = parseReply(buffer, offset); reply !== undefined; reply = parseReply(buffer, offset)) {
          offset = reply.end;
          replies.push(reply.value);
        }
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      if (replies.length < commands.length) return;
      const failed = replies.find((reply): reply is Error => reply instanceof Error);
      if (failed !== undefined) finish(failed);
      else finish(undefined, replies[replies.length - 1]);
    });
  });
}

/** Parses INFO text into field → value. */
export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

/** `INFO commandstats` → { get: 3, evalsha: 12, 'config|resetstat': 1, ... } (calls). */
export function parseCommandStats(text: string): Record<string, number> {
  const stats: Record<string, number> = {};
  for (const [field, value] of Object.entries(parseInfo(text))) {
    if (!field.startsWith('cmdstat_')) continue;
    const calls = /(?:^|,)calls=(\d+)/.exec(value);
    if (calls?.[1] !== undefined) stats[field.slice('cmdstat_'.length).toLowerCase()] = Number(calls[1]);
  }
  return stats;
}

export async function redisInfo(port: number, section: string, opts: RedisCommandOptions = {}): Promise<string> {
  const reply = await redisCommand(port, ['INFO', section], opts);
  if (typeof reply !== 'string') throw new Error(`INFO ${section} on port ${port} returned ${JSON.stringify(reply)}`);
  return reply;
}
