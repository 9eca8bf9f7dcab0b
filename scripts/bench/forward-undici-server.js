'use strict';
// Reference, not a peer: forward-node-server.js with an undici Pool in place of node:http
// and its Agent (same header work; undici's own handler callbacks, as tollgate uses).
// Opt in: --systems forward-undici.
// env: PORT, HOST (default 127.0.0.1), UPSTREAM_URL
const http = require('http');
const { Pool } = require('undici');
const { env, onSignals } = require('./common');
const { forwardedHead, backHead } = require('./forward-common');

const target = new URL(env('UPSTREAM_URL'));
const pool = new Pool(target.origin, { connections: 1024 });

class Forward {
  constructor(res) { this.res = res; }
  onConnect() {}
  onHeaders(status, raw, resume, statusText) {
    if (status < 200) return true;
    this.res.writeHead(status, statusText, backHead(raw.map((b) => b.toString('latin1'))));
    return true;
  }
  onData(chunk) { return this.res.write(chunk); }
  onComplete() { this.res.end(); }
  onError() {
    if (this.res.headersSent) return void this.res.destroy();
    this.res.writeHead(502);
    this.res.end();
  }
}

const server = http.createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.dispatch({ method: req.method, path: req.url, headers: forwardedHead(req, target.host), body: hasBody ? req : null }, new Forward(res));
});
server.keepAliveTimeout = 75000;
server.headersTimeout = 76000;
server.listen(Number(env('PORT')), env('HOST', '127.0.0.1'), () => console.log('ready'));
onSignals(() => { pool.destroy(); return new Promise((r) => server.close(r)); });
