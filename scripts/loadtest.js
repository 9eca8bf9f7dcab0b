#!/usr/bin/env node
'use strict';

// Load test through the gateway (or nginx in front of it) with a mix of API keys, one
// tier per key, and a per-tier summary at the end: status codes and latency p50/p99.
//
//   node scripts/loadtest.js --url http://127.0.0.1:8080 --duration 10 --connections 50 \
//     --keys free:demo_free_key_123,pro:demo_pro_key_789,enterprise:demo_enterprise_key_456
//
// Each connection sends every request with one key; connections are dealt round-robin
// over --keys (50 connections, 3 keys → 17/17/16). Repeat a key in --keys to weight it.
// autocannon's progress bar and overall table go to stderr, the per-tier table to stdout
// (or JSON with --json). Stops after --duration seconds, or on Ctrl-C.

const autocannon = require('autocannon');
const { UsageError, parseFlags, positiveInteger, optionsOrExit } = require('./cli');

const DEFAULT_KEYS = 'free:demo_free_key_123,pro:demo_pro_key_789,enterprise:demo_enterprise_key_456';

const USAGE = `Usage: loadtest [--url http://127.0.0.1:8080] [--duration 10] [--connections 50]
                [--keys tier:key,tier:key,…] [--path /] [--method GET] [--header x-api-key]
                [--json] [--no-progress]
  --keys     API keys with their tier (default ${DEFAULT_KEYS})
  --header   the header the gateway reads keys from (API_KEY_HEADER, default x-api-key)
  --json     print the per-tier summary as JSON instead of a table`;

/**
 * Latency histogram with ~1% relative error and fixed memory, whatever the run's length:
 * bucket i holds values in [1.01^i, 1.01^(i+1)) microseconds.
 */
class LatencyHistogram {
  constructor() {
    this.counts = new Map();
    this.total = 0;
  }

  record(ms) {
    const micros = Math.max(1, ms * 1000);
    const bucket = Math.floor(Math.log(micros) / Math.log(1.01));
    this.counts.set(bucket, (this.counts.get(bucket) || 0) + 1);
    this.total++;
  }

  /** The q-quantile in milliseconds (bucket midpoint), or null without samples. */
  quantile(q) {
    if (this.total === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (const bucket of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(bucket);
      if (seen >= rank) return (Math.pow(1.01, bucket) * 1.005) / 1000;
    }
    return null;
  }
}

function parseKeys(text) {
  const entries = text.split(',').map((entry) => entry.trim()).filter(Boolean);
  if (entries.length === 0) throw new UsageError('--keys is empty');
  return entries.map((entry) => {
    const colon = entry.indexOf(':');
    if (colon <= 0 || colon === entry.length - 1) throw new UsageError(`--keys entry ${JSON.stringify(entry)} is not tier:key`);
    return { tier: entry.slice(0, colon), key: entry.slice(colon + 1) };
  });
}

function parseOptions(argv) {
  const values = parseFlags(argv, {
    url: { type: 'string', default: 'http://127.0.0.1:8080' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    keys: { type: 'string', default: DEFAULT_KEYS },
    path: { type: 'string', default: '/' },
    method: { type: 'string', default: 'GET' },
    header: { type: 'string', default: 'x-api-key' },
    json: { type: 'boolean', default: false },
    'no-progress': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return { help: true };
  let url;
  try {
    url = new URL(values.path, values.url);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(values.url)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--url must be http:// or https://');
  return {
    url: url.toString(),
    duration: positiveInteger(values.duration, '--duration'),
    connections: positiveInteger(values.connections, '--connections'),
    keys: parseKeys(values.keys),
    method: values.method.toUpperCase(),
    header: values.header.toLowerCase(),
    json: values.json,
    progress: !values['no-progress'],
  };
}

/**
 * Run the load and tally responses by tier.
 * @returns {Promise<{ tiers: Record<string, { requests: number, statusCodes: Record<string, number>, p50: number|null, p99: number|null }>, errors: number, timeouts: number, result: object }>}
 */
function runLoadTest(options) {
  const { url, duration, connections, keys, method, header, progress } = options;
  const tierOfClient = new WeakMap();
  const tally = new Map();
  for (const { tier } of keys) {
    if (!tally.has(tier)) tally.set(tier, { requests: 0, statusCodes: {}, latency: new LatencyHistogram() });
  }
  let nextKey = 0;

  const instance = autocannon(
    {
      url,
      method,
      duration,
      connections,
      // Each connection gets its key once; its responses are then attributed to its tier.
      setupClient(client) {
        const { tier, key } = keys[nextKey++ % keys.length];
        tierOfClient.set(client, tier);
        client.setHeaders({ [header]: key });
      },
    },
    () => {},
  );

  // The tracker's per-response event carries the client, so the tier, and the latency.
  instance.on('response', (client, statusCode, _bytes, responseTimeMs) => {
    const entry = tally.get(tierOfClient.get(client));
    if (!entry) return;
    entry.requests++;
    entry.statusCodes[statusCode] = (entry.statusCodes[statusCode] || 0) + 1;
    entry.latency.record(responseTimeMs);
  });

  autocannon.track(instance, { renderProgressBar: progress, renderResultsTable: progress, renderLatencyTable: false });

  const onSigint = () => instance.stop();
  process.once('SIGINT', onSigint);

  return new Promise((resolve, reject) => {
    instance.once('done', (result) => {
      process.removeListener('SIGINT', onSigint);
      const tiers = {};
      for (const [tier, entry] of tally) {
        tiers[tier] = {
          requests: entry.requests,
          statusCodes: entry.statusCodes,
          p50: entry.latency.quantile(0.5),
          p99: entry.latency.quantile(0.99),
        };
      }
      resolve({ tiers, errors: result.errors, timeouts: result.timeouts, result });
    });
    instance.once('error', reject);
  });
}

function formatMs(ms) {
  return ms === null ? '-' : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

function renderTable(summary) {
  const codes = [...new Set(Object.values(summary.tiers).flatMap((t) => Object.keys(t.statusCodes)))].sort();
  const head = ['tier', 'requests', ...codes, 'p50', 'p99'];
  const rows = Object.entries(summary.tiers).map(([tier, t]) => [
    tier,
    String(t.requests),
    ...codes.map((code) => String(t.statusCodes[code] || 0)),
    formatMs(t.p50),
    formatMs(t.p99),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  out.push('', `connection errors: ${summary.errors}, timeouts: ${summary.timeouts}`);
  return `${out.join('\n')}\n`;
}

async function main() {
  const options = optionsOrExit('loadtest', USAGE, () => parseOptions(process.argv.slice(2)));
  if (options === null) return;
  const tiers = [...new Set(options.keys.map((k) => k.tier))].join(', ');
  if (options.connections < options.keys.length) {
    const idle = options.keys.slice(options.connections).map((k) => k.tier).join(', ');
    process.stderr.write(`loadtest: only ${options.connections} connection(s) for ${options.keys.length} keys; no traffic for: ${idle}\n`);
  }
  process.stderr.write(`loadtest: ${options.method} ${options.url} for ${options.duration}s, ${options.connections} connections, tiers ${tiers}\n`);
  let summary;
  try {
    summary = await runLoadTest(options);
  } catch (err) {
    process.stderr.write(`loadtest: ${err.message}\n`);
    process.exit(1);
  }
  const total = Object.values(summary.tiers).reduce((n, t) => n + t.requests, 0);
  process.stdout.write(options.json ? `${JSON.stringify({ url: options.url, duration: options.duration, connections: options.connections, tiers: summary.tiers, errors: summary.errors, timeouts: summary.timeouts })}\n` : renderTable(summary));
  if (total === 0) {
    process.stderr.write(`loadtest: no responses at all from ${options.url} — is it running?\n`);
    process.exitCode = 1;
  }
}

if (require.main === module) {
  void main();
}

module.exports = { runLoadTest, parseOptions, renderTable, LatencyHistogram };
