'use strict';
// Shared helpers for the comparison servers spawned by scripts/bench.js.
// They read the same tiers/keys files as tollgate so every system enforces the same
// per-key limits: key -> tier -> effective limit (`burst`, default `limit`) per window.
const fs = require('fs');
const http = require('http');

function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) {
      console.error(`missing env ${name}`);
      process.exit(2);
    }
    return fallback;
  }
  return v;
}

function loadLimits() {
  const tiersFile = env('BENCH_TIERS_FILE');
  const keysFile = env('BENCH_KEYS_FILE');
  const tiersDoc = JSON.parse(fs.readFileSync(tiersFile, 'utf8'));
  const keysDoc = JSON.parse(fs.readFileSync(keysFile, 'utf8'));
  const windowSeconds = tiersDoc.windowSeconds || 60;
  const limits = {};
  for (const [name, t] of Object.entries(tiersDoc.tiers)) {
    limits[name] = Math.max(t.limit, t.burst === undefined ? t.limit : t.burst);
  }
  const keyTier = new Map();
  for (const k of keysDoc.keys) keyTier.set(k.key, k.tier);
  return { windowSeconds, limits, keyTier };
}

function onSignals(close) {
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    Promise.resolve()
      .then(close)
      .catch(() => {})
      .finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * The baseline proxy: http-proxy with a keep-alive agent and X-Forwarded-*, a 502 JSON on
 * upstream errors. Bare http-proxy and the rlflex comparison both use this one, so the
 * only difference between them is the limiter.
 */
function createBaselineProxy() {
  const httpProxy = require('http-proxy');
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
  return { agent, proxy };
}

/** Whether TLS_CERT_FILE is set: a reference server then listens with TLS. */
function tlsConfigured() {
  return process.env.TLS_CERT_FILE !== undefined && process.env.TLS_CERT_FILE !== '';
}

/**
 * A reference server listening as tollgate does: node:http, or with TLS_CERT_FILE and
 * TLS_KEY_FILE node:http2's secure server with allowHTTP1 (h2 and HTTP/1.1 by ALPN, h2
 * through the compatibility API). Prints "ready" once listening on PORT and HOST.
 */
function listenAsTollgate(handle) {
  const server = tlsConfigured()
    ? require('http2').createSecureServer({ allowHTTP1: true, cert: fs.readFileSync(env('TLS_CERT_FILE')), key: fs.readFileSync(env('TLS_KEY_FILE')), settings: { maxConcurrentStreams: 128 } }, handle)
    : http.createServer(handle);
  server.keepAliveTimeout = 75000;
  server.headersTimeout = 76000;
  server.listen(Number(env('PORT')), env('HOST', '127.0.0.1'), () => console.log('ready'));
  return server;
}

module.exports = { env, loadLimits, onSignals, createBaselineProxy, tlsConfigured, listenAsTollgate };
