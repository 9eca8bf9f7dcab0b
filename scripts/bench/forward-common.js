'use strict';
// The header work both reference forwarders share (forward-node-server.js,
// forward-undici-server.js), so that they differ only in the HTTP client.

const DROP_REQUEST = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding']);
const DROP_RESPONSE = new Set(['connection', 'keep-alive']);
const DROP_RESPONSE_H2 = new Set(['connection', 'keep-alive', 'transfer-encoding']);

/**
 * The client's raw headers minus hop-by-hop ones and Host, plus Host and X-Forwarded-*.
 * Over h2 (the TLS forwarder) pseudo-headers are skipped and :authority stands for Host,
 * as tollgate does; `proto` is 'https' there.
 */
function forwardedHead(req, upstreamHost, proto = 'http') {
  const raw = req.rawHeaders;
  const out = [];
  let host = '';
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].charCodeAt(0) === 0x3a) {
      if (raw[i] === ':authority') host = raw[i + 1];
      continue;
    }
    const lower = raw[i].toLowerCase();
    if (lower === 'host') host = raw[i + 1];
    if (DROP_REQUEST.has(lower)) continue;
    out.push(raw[i], raw[i + 1]);
  }
  out.push('Host', upstreamHost, 'X-Forwarded-For', req.socket.remoteAddress || '', 'X-Forwarded-Proto', proto, 'X-Forwarded-Host', host);
  return out;
}

/** The upstream's raw response headers minus hop-by-hop ones (and Transfer-Encoding for h2). */
function backHead(raw, h2 = false) {
  const drop = h2 ? DROP_RESPONSE_H2 : DROP_RESPONSE;
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (drop.has(raw[i].toLowerCase())) continue;
    out.push(raw[i], raw[i + 1]);
  }
  return out;
}

module.exports = { forwardedHead, backHead };
