#!/usr/bin/env node
'use strict';

// The demo upstream: answers every request 200 with a JSON echo of what it received.
// Used by `docker compose` (the `upstream` service), `npm run demo`, the load test and
// the end-to-end tests. Plain Node, no dependencies, so it runs from the runtime image.
//
//   PORT=3000 HOST=0.0.0.0 node scripts/echo-upstream.js
//
// Response body: {"method","path","query","headers","body","bodyBytes","bodyTruncated"}
// `body` holds at most MAX_ECHO_BYTES of the request body as text; the rest is read and
// counted in `bodyBytes` but never kept, so a huge upload cannot exhaust memory.

const http = require('node:http');

const MAX_ECHO_BYTES = 64 * 1024;

// Longer than any proxy's idle keep-alive towards us, so the gateway never reuses a
// socket we are closing at the same moment (that race shows up as sporadic 502s).
// Node's default is 5 s. See https://nodejs.org/api/http.html#serverkeepalivetimeout
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** Query string → object; a name given more than once maps to an array of its values. */
function parseQuery(searchParams) {
  const query = {};
  for (const [name, value] of searchParams) {
    const prev = query[name];
    if (prev === undefined) query[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else query[name] = [prev, value];
  }
  return query;
}

function handleRequest(req, res) {
  const kept = [];
  let keptBytes = 0;
  let totalBytes = 0;

  req.on('data', (chunk) => {
    totalBytes += chunk.length;
    if (keptBytes < MAX_ECHO_BYTES) {
      const part = chunk.subarray(0, MAX_ECHO_BYTES - keptBytes);
      kept.push(part);
      keptBytes += part.length;
    }
  });

  req.on('end', () => {
    const url = new URL(req.url || '/', 'http://upstream.invalid');
    const payload = JSON.stringify({
      method: req.method,
      path: url.pathname,
      query: parseQuery(url.searchParams),
      headers: req.headers,
      body: Buffer.concat(kept, keptBytes).toString('utf8'),
      bodyBytes: totalBytes,
      bodyTruncated: totalBytes > keptBytes,
    });
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(payload),
    });
    res.end(payload);
  });

  // A client that goes away mid-upload: nothing to answer, just drop what we kept.
  req.on('error', () => {
    kept.length = 0;
  });
}

/** An echo server, not yet listening. */
function createEchoServer() {
  const server = http.createServer(handleRequest);
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
  return server;
}

/**
 * Start an echo upstream. `port: 0` picks a free port; read it from `server.address()`.
 * @param {{ port?: number, host?: string }} [options]
 * @returns {Promise<import('node:http').Server>}
 */
function startEchoUpstream(options = {}) {
  const port = options.port ?? 3000;
  const host = options.host ?? '0.0.0.0';
  const server = createEchoServer();
  return new Promise((resolve, reject) => {
    const onError = (err) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

function log(fields) {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

function parsePort(raw) {
  if (raw === undefined || raw === '') return 3000;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`echo-upstream: PORT must be an integer 0-65535, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return port;
}

async function main() {
  const port = parsePort(process.env.PORT);
  const host = process.env.HOST || '0.0.0.0';
  let server;
  try {
    server = await startEchoUpstream({ port, host });
  } catch (err) {
    log({ level: 'error', msg: 'echo upstream failed to start', host, port, err: err.message });
    process.exit(1);
  }
  const address = server.address();
  log({ level: 'info', msg: 'echo upstream listening', host: address.address, port: address.port });

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    log({ level: 'info', msg: 'echo upstream stopping', signal });
    server.close(() => process.exit(0));
    // Idle keep-alive sockets would hold close() open for KEEP_ALIVE_TIMEOUT_MS.
    server.closeIdleConnections();
    // In-flight requests get a moment to finish, then we leave anyway.
    setTimeout(() => {
      server.closeAllConnections();
      process.exit(0);
    }, 5_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) {
  void main();
}

module.exports = { startEchoUpstream, createEchoServer, MAX_ECHO_BYTES };
