'use strict';
// Reference, not a peer: a Node server that answers every request from memory (no upstream,
// no key, no limit) with a head the size of tollgate's (the bench upstream's "ok" and the
// rate-limit headers). Listens as tollgate does: node:http without TLS; with TLS_CERT_FILE
// and TLS_KEY_FILE, node:http2's secure server with allowHTTP1. Its HTTPS ÷ plain ratio in
// the tls scenario is what Node's TLS leaves of a server that does almost nothing per request.
// EVICT_KB (default 0): before answering, read one value per 64-byte line of a buffer this
// large, which pushes other data out of the CPU caches as a bigger process would
// (scripts/bench/tls-cache.js). ALLOC_KB (default 0): before answering, allocate this many KB
// of short-lived 1 KB arrays, as tollgate's request path allocates ≈ 26–29 KB of garbage per
// request (docs/tls.md): the nursery then moves through fresh memory as tollgate's does.
// env: PORT, HOST (default 127.0.0.1), TLS_CERT_FILE, TLS_KEY_FILE, EVICT_KB, ALLOC_KB
const { listenAsTollgate, onSignals } = require('./common');

const HEAD = {
  'content-type': 'text/plain',
  'content-length': '2',
  'x-ratelimit-limit': '100000000',
  'x-ratelimit-remaining': '99999999',
  'x-ratelimit-reset': '60',
  'ratelimit-policy': '100000000;w=60',
  ratelimit: 'limit=100000000, remaining=99999999, reset=60',
  server: 'nginx/1.22.1',
};

const evict = new Float64Array((Number(process.env.EVICT_KB || 0) * 1024) / 8);
let sink = 0;
const allocKb = Number(process.env.ALLOC_KB || 0);
// Each array escapes into this ring, so the compiler cannot elide the allocation; it is
// garbage once overwritten eight arrays later.
const ring = new Array(8);

const handle = (req, res) => {
  for (let i = 0; i < evict.length; i += 8) sink += evict[i];
  // 126 elements + the array's header ≈ 1 KB on a 64-bit heap.
  for (let i = 0; i < allocKb; i++) ring[i & 7] = new Array(126).fill(i);
  req.resume();
  res.writeHead(200, HEAD);
  res.end('ok');
};
const server = listenAsTollgate(handle);
// Read once, so the reads in the handler are not optimised away.
process.on('exit', () => { if (sink !== 0) console.log(sink); });
onSignals(() => new Promise((r) => server.close(r)));
