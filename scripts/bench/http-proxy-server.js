'use strict';
// Baseline: bare http-proxy with a keep-alive agent, no auth, no rate limiting.
// env: PORT, HOST (default 127.0.0.1), UPSTREAM_URL, MAX_SOCKETS (default 128)
const http = require('http');
const httpProxy = require('http-proxy');
const { env, onSignals } = require('./common');

const agent = new http.Agent({ keepAlive: true, maxSockets: Number(env('MAX_SOCKETS', '128')) });
const proxy = httpProxy.createProxyServer({ target: env('UPSTREAM_URL'), agent, xfwd: true });
proxy.on('error', (_err, _req, res) => {
  if (!res || typeof res.writeHead !== 'function' || res.headersSent) {
    if (res && res.destroy) res.destroy();
    return;
  }
  res.writeHead(502, { 'content-type': 'application/json' });
  res.end('{"error":"bad_gateway","message":"upstream failed"}');
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 75000;
server.headersTimeout = 76000;
server.listen(Number(env('PORT')), env('HOST', '127.0.0.1'), () => console.log('ready'));
onSignals(() => { agent.destroy(); return new Promise((r) => server.close(r)); });
