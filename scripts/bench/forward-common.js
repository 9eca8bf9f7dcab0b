'use strict';
// The header work both reference forwarders share (forward-node-server.js,
// forward-undici-server.js), so that they differ only in the HTTP client.

const DROP_REQUEST = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding']);
const DROP_RESPONSE = new Set(['connection', 'keep-alive']);

/** The client's raw headers minus hop-by-hop ones and Host, plus Host and X-Forwarded-*. */
function forwardedHead(req, upstreamHost) {
  const raw = req.rawHeaders;
  const out = [];
  let host = '';
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    if (lower === 'host') host = raw[i + 1];
    if (DROP_REQUEST.has(lower)) continue;
    out.push(raw[i], raw[i + 1]);
  }
  out.push('Host', upstreamHost, 'X-Forwarded-For', req.socket.remoteAddress || '', 'X-Forwarded-Proto', 'http', 'X-Forwarded-Host', host);
  return out;
}

/** The upstream's raw response headers minus hop-by-hop ones. */
function backHead(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (DROP_RESPONSE.has(raw[i].toLowerCase())) continue;
    out.push(raw[i], raw[i + 1]);
  }
  return out;
}

module.exports = { forwardedHead, backHead };
