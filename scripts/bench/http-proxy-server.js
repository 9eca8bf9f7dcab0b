'use strict';
// Baseline: bare http-proxy with a keep-alive agent, no auth, no rate limiting.
// env: PORT, HOST (default 127.0.0.1), UPSTREAM_URL, MAX_SOCKETS (default 128)
const http = require('http');
const { env, onSignals, createBaselineProxy } = require('./common');

const { agent, proxy } = createBaselineProxy();

const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 75000;
server.headersTimeout = 76000;
server.listen(Number(env('PORT')), env('HOST', '127.0.0.1'), () => console.log('ready'));
onSignals(() => { agent.destroy(); return new Promise((r) => server.close(r)); });
