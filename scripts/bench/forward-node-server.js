'use strict';
// Reference, not a peer: the least a forwarder can do with node:http and a keep-alive
// Agent — the client's raw header list minus Host and Connection, plus Host and
// X-Forwarded-*; the upstream's raw list back minus Connection and Keep-Alive. No auth,
// no limiting. With forward-undici-server.js it measures what the HTTP client itself
// costs (docs/performance.md, "Why plain requests go through undici"). Opt in: --systems forward-node.
// env: PORT, HOST (default 127.0.0.1), UPSTREAM_URL
const http = require('http');
const { env, onSignals } = require('./common');
const { forwardedHead, backHead } = require('./forward-common');

const target = new URL(env('UPSTREAM_URL'));
const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });

const server = http.createServer((req, res) => {
  const up = http.request({
    hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: forwardedHead(req, target.host), agent,
  });
  up.on('response', (ur) => {
    res.writeHead(ur.statusCode, ur.statusMessage, backHead(ur.rawHeaders));
    ur.pipe(res);
  });
  up.on('error', () => {
    if (res.headersSent) return void res.destroy();
    res.writeHead(502);
    res.end();
  });
  if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) req.pipe(up);
  else up.end();
});
server.keepAliveTimeout = 75000;
server.headersTimeout = 76000;
server.listen(Number(env('PORT')), env('HOST', '127.0.0.1'), () => console.log('ready'));
onSignals(() => { agent.destroy(); return new Promise((r) => server.close(r)); });
