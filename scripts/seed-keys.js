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
// Input CSV: columns tier,name[,key[,identity[,expiresAt[,limits]]]], or any of them in the
// order an optional header row names. Rows with a key import that key (migrating from
// another gateway); rows without one get a generated key. identity, expiresAt and limits
// (JSON) are SPEC §9's key fields.
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
  --csv FILE      create one key per row: tier,name[,key[,identity[,expiresAt[,limits]]]]
                  (or the columns a header row names; limits is JSON)
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

const COLUMNS = ['tier', 'name', 'key', 'identity', 'expiresAt', 'limits'];
const IDENTITY = /^[A-Za-z0-9._:-]{1,64}$/;

/** The column names of a header row (any order, any case), or null when the row is data. */
function headerColumns(row) {
  const names = row.map((cell) => cell.trim());
  const canonical = names.map((n) => COLUMNS.find((c) => c.toLowerCase() === n.toLowerCase()));
  if (canonical[0] === undefined || !canonical.includes('tier') || !canonical.includes('name')) return null;
  const unknown = names.filter((_, i) => canonical[i] === undefined);
  if (unknown.length > 0) throw new UsageError(`CSV header: unknown column(s) ${unknown.join(', ')} (allowed: ${COLUMNS.join(', ')})`);
  return canonical;
}

/**
 * Rows of tier,name[,key[,identity[,expiresAt[,limits]]]] (or the columns a header row names)
 * → key requests, validated before anything is created. `limits` is JSON (SPEC §9), e.g.
 * "{""quota"":{""limit"":1000,""period"":""month""}}"; the gateway validates it again.
 */
function requestsFromCsv(text, file) {
  const rows = parseCsv(text);
  let columns = COLUMNS;
  const header = rows.length > 0 ? headerColumns(rows[0]) : null;
  if (header !== null) {
    columns = header;
    rows.shift();
  }
  if (rows.length === 0) throw new UsageError(`${file}: no rows (expected columns ${COLUMNS.join(',')}; tier and name required)`);
  return rows.map((cells, index) => {
    const line = `${file} row ${index + 1}`;
    if (cells.length < 2 || cells.length > columns.length) {
      throw new UsageError(`${line}: expected 2 to ${columns.length} columns (${columns.join(',')}), got ${cells.length}`);
    }
    const v = {};
    cells.forEach((cell, i) => {
      v[columns[i]] = cell.trim();
    });
    const { tier, name, key, identity, expiresAt, limits } = v;
    if (!TIER_NAME.test(tier || '')) throw new UsageError(`${line}: tier ${JSON.stringify(tier)} is not 1-32 of [a-z0-9_-]`);
    if (!name) throw new UsageError(`${line}: name is empty`);
    const request = { tier, name };
    if (key) {
      if (!API_KEY.test(key)) throw new UsageError(`${line}: key is not 8-128 of [A-Za-z0-9_-]`);
      request.key = key;
    }
    if (identity) {
      if (!IDENTITY.test(identity)) throw new UsageError(`${line}: identity ${JSON.stringify(identity)} is not 1-64 of [A-Za-z0-9._:-]`);
      request.identity = identity;
    }
    if (expiresAt) {
      if (!Number.isFinite(Date.parse(expiresAt)) || !/T/.test(expiresAt)) throw new UsageError(`${line}: expiresAt ${JSON.stringify(expiresAt)} is not an ISO-8601 date and time`);
      request.expiresAt = expiresAt;
    }
    if (limits) {
      let parsed;
      try {
        parsed = JSON.parse(limits);
      } catch {
        throw new UsageError(`${line}: limits is not JSON`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`${line}: limits must be a JSON object`);
      request.limits = parsed;
    }
    return request;
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
