'use strict';
// Fallback upstream when nginx is not installed: answers every request 200 "ok".
const http = require('http');
const { env, onSignals } = require('./common');

const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
  res.end('ok');
});
server.keepAliveTimeout = 75000;
server.headersTimeout = 76000;
server.listen(Number(env('PORT')), env('HOST', '127.0.0.1'), () => console.log('ready'));
onSignals(() => new Promise((r) => server.close(r)));
