#!/usr/bin/env node
'use strict';

// Create API keys through a running gateway's admin API (POST /admin/keys, SPEC §4) and
// print them as CSV on stdout. The plain key is shown only at creation: redirect stdout
// to a file you keep safe.
//
//   node scripts/seed-keys.js --admin http://127.0.0.1:9090 --token "$ADMIN_TOKEN" \
//       --count 100 --tier free [--name loadtest] > keys.csv
//   node scripts/seed-keys.js --admin http://127.0.0.1:9090 --token "$ADMIN_TOKEN" \
//       --csv customers.csv > keys.csv
//
// Input CSV: columns tier,name[,key], an optional header row. Rows with a key import that
// key (migrating from another gateway); rows without one get a generated key.
// Output CSV: id,key,tier,name. Exit 0 when every key was created, 1 otherwise (keys
// created before the failure are still printed), 2 for bad arguments.

const { readFileSync } = require('node:fs');
const { UsageError, parseFlags, optionsOrExit } = require('./cli');

const USAGE = `Usage:
  seed-keys --admin URL [--token T] --count N --tier TIER [--name PREFIX]
  seed-keys --admin URL [--token T] --csv FILE

  --admin URL     the gateway's admin listener (default $TOLLGATE_ADMIN_URL or http://127.0.0.1:9090)
  --token T       admin bearer token (default $ADMIN_TOKEN)
  --count N       create N keys of --tier, named PREFIX-1 … PREFIX-N (default prefix: seed)
  --csv FILE      create one key per row: tier,name[,key] (a header row is skipped)
Prints id,key,tier,name as CSV on stdout.`;

const TIER_NAME = /^[a-z0-9_-]{1,32}$/;
const API_KEY = /^[A-Za-z0-9_-]{8,128}$/;
const REQUEST_TIMEOUT_MS = 10_000;

/** Minimal RFC 4180 reader: commas, double quotes, "" escapes, CRLF or LF. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += c;
    }
  }
  if (quoted) throw new UsageError('CSV: a quoted field is not closed');
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => r.some((cell) => cell.trim() !== ''));
}

function csvField(value) {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Rows of tier,name[,key] → key requests, validated before anything is created. */
function requestsFromCsv(text, file) {
  const rows = parseCsv(text);
  if (rows.length > 0 && rows[0][0].trim().toLowerCase() === 'tier' && (rows[0][1] || '').trim().toLowerCase() === 'name') {
    rows.shift();
  }
  if (rows.length === 0) throw new UsageError(`${file}: no rows (expected columns tier,name[,key])`);
  return rows.map((cells, index) => {
    const line = `${file} row ${index + 1}`;
    if (cells.length < 2 || cells.length > 3) {
      throw new UsageError(`${line}: expected 2 or 3 columns (tier,name[,key]), got ${cells.length}`);
    }
    const [tier, name, key] = cells.map((cell) => cell.trim());
    if (!TIER_NAME.test(tier)) throw new UsageError(`${line}: tier ${JSON.stringify(tier)} is not 1-32 of [a-z0-9_-]`);
    if (name === '') throw new UsageError(`${line}: name is empty`);
    if (key !== undefined && key !== '' && !API_KEY.test(key)) {
      throw new UsageError(`${line}: key is not 8-128 of [A-Za-z0-9_-]`);
    }
    return key ? { tier, name, key } : { tier, name };
  });
}

function parseOptions(argv, env) {
  const values = parseFlags(argv, {
    admin: { type: 'string' },
    token: { type: 'string' },
    count: { type: 'string' },
    tier: { type: 'string' },
    name: { type: 'string' },
    csv: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return { help: true };

  const admin = values.admin || env.TOLLGATE_ADMIN_URL || 'http://127.0.0.1:9090';
  let adminUrl;
  try {
    adminUrl = new URL(admin);
  } catch {
    throw new UsageError(`--admin ${JSON.stringify(admin)} is not a URL (expected e.g. http://127.0.0.1:9090)`);
  }
  if (adminUrl.protocol !== 'http:' && adminUrl.protocol !== 'https:') {
    throw new UsageError(`--admin must be an http:// or https:// URL, got ${admin}`);
  }
  const token = values.token ?? env.ADMIN_TOKEN ?? '';

  if (values.csv !== undefined && values.count !== undefined) throw new UsageError('use either --csv or --count, not both');
  let requests;
  if (values.csv !== undefined) {
    if (values.tier !== undefined || values.name !== undefined) throw new UsageError('--tier and --name go with --count; a CSV names them per row');
    let text;
    try {
      text = readFileSync(values.csv, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --csv ${values.csv}: ${err.message}`);
    }
    requests = requestsFromCsv(text, values.csv);
  } else if (values.count !== undefined) {
    const count = Number(values.count);
    if (!Number.isInteger(count) || count < 1 || count > 100_000) throw new UsageError(`--count must be an integer 1-100000, got ${values.count}`);
    if (values.tier === undefined) throw new UsageError('--count needs --tier');
    if (!TIER_NAME.test(values.tier)) throw new UsageError(`--tier ${JSON.stringify(values.tier)} is not 1-32 of [a-z0-9_-]`);
    const prefix = values.name ?? 'seed';
    requests = Array.from({ length: count }, (_, i) => ({ tier: values.tier, name: `${prefix}-${i + 1}` }));
  } else {
    throw new UsageError('nothing to create: give --count N --tier TIER, or --csv FILE');
  }
  return { adminUrl, token, requests };
}

async function createKey(adminUrl, token, body) {
  const url = new URL('/admin/keys', adminUrl);
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    const cause = err.cause && err.cause.code ? `${err.cause.code} ` : '';
    throw new Error(`cannot reach ${url.origin}: ${cause}${err.message}`);
  }
  const text = await res.text();
  if (res.status !== 201) {
    let detail = text.slice(0, 300);
    try {
      const parsed = JSON.parse(text);
      detail = [parsed.error, parsed.message].filter(Boolean).join(': ') || detail;
    } catch {
      // not JSON: show the start of the body as is
    }
    const hint = res.status === 401 ? ' (wrong or missing --token / $ADMIN_TOKEN?)' : '';
    throw new Error(`POST ${url.pathname} answered ${res.status}${hint}: ${detail}`);
  }
  let record;
  try {
    record = JSON.parse(text);
  } catch {
    throw new Error(`POST ${url.pathname} answered 201 with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  if (typeof record.id !== 'string' || typeof record.key !== 'string') {
    throw new Error(`POST ${url.pathname} answered 201 without "id" and "key": ${text.slice(0, 200)}`);
  }
  return record;
}

/**
 * Create the keys one after another, writing each CSV row as soon as it exists so that
 * nothing created is lost if a later one fails. Returns the number created.
 */
async function seedKeys({ adminUrl, token, requests }, out = process.stdout) {
  out.write('id,key,tier,name\n');
  let created = 0;
  for (const [index, body] of requests.entries()) {
    let record;
    try {
      record = await createKey(adminUrl, token, body);
    } catch (err) {
      const which = `key ${index + 1} of ${requests.length} (tier=${body.tier}, name=${JSON.stringify(body.name)})`;
      const done = created > 0 ? ` ${created} key(s) created before it are printed above.` : '';
      const error = new Error(`${which}: ${err.message}.${done}`);
      error.created = created;
      throw error;
    }
    out.write(`${[record.id, record.key, record.tier ?? body.tier, record.name ?? body.name].map(csvField).join(',')}\n`);
    created++;
  }
  return created;
}

async function main() {
  const options = optionsOrExit('seed-keys', USAGE, () => parseOptions(process.argv.slice(2), process.env));
  if (options === null) return;
  try {
    const created = await seedKeys(options);
    process.stderr.write(`seed-keys: created ${created} key(s) on ${options.adminUrl.origin}\n`);
  } catch (err) {
    process.stderr.write(`seed-keys: ${err.message}\n`);
    process.exitCode = 1;
  }
}

if (require.main === module) {
  void main();
}

module.exports = { parseCsv, requestsFromCsv, parseOptions, seedKeys };
