'use strict';
// Reference, not a peer: forward-node-server.js with an undici Pool in place of node:http
// and its Agent (same header work; undici's own handler callbacks, as tollgate uses).
// Opt in: --systems forward-undici. With TLS_CERT_FILE and TLS_KEY_FILE it listens as
// tollgate does with TLS (node:http2's secure server with allowHTTP1: h2 and HTTP/1.1 by
// ALPN, h2 through the compatibility API): the TLS reference of the tls scenario.
// env: PORT, HOST (default 127.0.0.1), UPSTREAM_URL, TLS_CERT_FILE, TLS_KEY_FILE
const { Pool } = require('undici');
const { env, onSignals, tlsConfigured, listenAsTollgate } = require('./common');
const { forwardedHead, backHead } = require('./forward-common');

const target = new URL(env('UPSTREAM_URL'));
const pool = new Pool(target.origin, { connections: 1024 });

class Forward {
  constructor(res) { this.res = res; }
  onConnect() {}
  onHeaders(status, raw, resume, statusText) {
    if (status < 200) return true;
    const h2 = this.res.stream !== undefined;
    const head = backHead(raw.map((b) => b.toString('latin1')), h2);
    if (h2) this.res.writeHead(status, head);
    else this.res.writeHead(status, statusText, head);
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

const proto = tlsConfigured() ? 'https' : 'http';
const handle = (req, res) => {
  const hasBody = req.stream !== undefined ? !req.stream.endAfterHeaders
    : req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.dispatch({ method: req.method, path: req.url, headers: forwardedHead(req, target.host, proto), body: hasBody ? req : null }, new Forward(res));
};
const server = listenAsTollgate(handle);
onSignals(() => { pool.destroy(); return new Promise((r) => server.close(r)); });
