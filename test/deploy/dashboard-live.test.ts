// The Grafana dashboard against a live gateway's /metrics: every series its queries read
// exists, with the labels the queries match and group on; and the output is well formed
// (SPEC §5): every tollgate_* family has HELP and TYPE, label values are bounded (tier,
// outcome, state, le, file, result, counter, policy) and never hold an API key, an IP address or a path; and
// `promtool check metrics` passes (promtool is required).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from '../support/binaries';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest, type HttpResult } from '../support/http';
import { startUpstream, type Upstream } from '../support/upstream';
import { dashboardMetricNames, dashboardQueries, loadDashboard } from './dashboardQueries';

const PRO = 'demo_pro_key_789';
const FREE = 'demo_free_key_123';
const BAD_KEYS = ['not_a_key_live_dash_1', 'not_a_key_live_dash_2'];
const CLIENT_IP = '203.0.113.50';
const PATH = '/live-dashboard/orders/12345';

let upstream: Upstream | undefined;
let gateway: GatewayProcess | undefined;
let metricsText = '';
let contentType = '';

function gw(): GatewayProcess {
  if (gateway === undefined) throw new Error('the gateway did not start');
  return gateway;
}

function send(key: string | undefined, extra: Record<string, string> = {}): Promise<HttpResult> {
  return httpRequest(`${gw().url}${PATH}?key=${key ?? ''}`, { headers: { ...(key === undefined ? {} : { 'x-api-key': key }), ...extra } });
}

beforeAll(async () => {
  upstream = await startUpstream();
  // Memory store, shipped tiers and demo keys. TRUST_PROXY so a forwarded client address is
  // in play; INVALID_KEY_LIMIT=2 so two bad keys produce a block (and the blocked series).
  // One route in shadow mode (SPEC §10), so the shadow panel's series exists.
  const routesFile = join(mkdtempSync(join(tmpdir(), 'tollgate-live-dash-')), 'routes.json');
  writeFileSync(routesFile, JSON.stringify({ routes: [{ name: 'shadowed', match: { path: '/live-dashboard/shadowed' }, mode: 'shadow' }] }));
  gateway = await startGateway({
    env: { UPSTREAM_URL: upstream.url, TRUST_PROXY: '127.0.0.1/32', INVALID_KEY_LIMIT: '2', ROUTES_FILE: routesFile },
  });

  const statuses: number[] = [];
  statuses.push((await send(PRO)).status); // allowed
  statuses.push((await send(undefined)).status); // 401 missing_api_key
  for (const key of BAD_KEYS) statuses.push((await send(key, { 'x-forwarded-for': CLIENT_IP })).status); // 401, 401 → block
  statuses.push((await send(PRO, { 'x-forwarded-for': CLIENT_IP })).status); // 403 ip_blocked
  const free: number[] = [];
  for (let i = 0; i < 21; i++) free.push((await send(FREE)).status); // 20 × 200, then 429
  // The upstream drops the connection: 502, outcome upstream_error (the alert panels read it).
  statuses.push((await httpRequest(`${gw().url}/reset`, { headers: { 'x-api-key': PRO } })).status);
  expect(statuses).toEqual([200, 401, 401, 401, 403, 502]);
  expect(free).toEqual([...Array<number>(20).fill(200), 429]);
  // Over its limit on the shadow route: proxied, counted as a would-be refusal.
  expect((await httpRequest(`${gw().url}/live-dashboard/shadowed`, { headers: { 'x-api-key': FREE } })).status).toBe(200);
  // CRITICAL pinned: free's limit is 0, so it is shed (outcome overloaded); the pin and its
  // removal are transitions (the health panels read both).
  const json = { 'content-type': 'application/json' };
  const admin = `${gw().adminUrl}/admin/health`;
  expect((await httpRequest(admin, { method: 'PUT', headers: json, body: JSON.stringify({ status: 'CRITICAL' }) })).status).toBe(200);
  const shed = (await send(FREE)).status;
  expect((await httpRequest(`${admin}/override`, { method: 'DELETE' })).status).toBe(200);
  expect(shed).toBe(503);

  const metrics = await httpRequest(`${gw().adminUrl}/metrics`);
  expect(metrics.status).toBe(200);
  metricsText = metrics.body;
  contentType = String(metrics.headers['content-type']);
}, 30000);

afterAll(async () => {
  const code = await gateway?.stop();
  await upstream?.close();
  if (gateway !== undefined && code !== 0) throw new Error(`gateway exited with ${String(code)}\n${gateway.output()}`);
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
}

/** Prometheus text format 0.0.4, as much of it as prom-client writes. */
function parseExposition(text: string): Exposition {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$/.exec(line);
    if (meta !== null) {
      (meta[1] === 'HELP' ? help : type).set(meta[2] ?? '', meta[3] ?? '');
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (sample === null) throw new Error(`unparsable /metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[m[1] ?? ''] = (m[2] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: sample[1] ?? '', labels, value: Number(sample[3]) });
  }
  return { help, type, samples };
}

/** The family a sample belongs to: `x_bucket`/`_sum`/`_count` of a histogram or summary → `x`. */
function familyOf(name: string, type: Map<string, string>): string {
  if (type.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return type.has(base) ? base : name;
}

describe('the Grafana dashboard against a live /metrics', () => {
  test('every metric the dashboard queries is a family in the live output', () => {
    const live = parseExposition(metricsText);
    const families = [...live.type.keys()];
    const used = dashboardMetricNames(families);
    expect(used.length).toBeGreaterThan(0);
    const missing = used.filter((name) => !live.type.has(name));
    expect(missing).toEqual([]);
  });

  test('every series a query reads exists, with the label values it matches and the labels it groups by', () => {
    const live = parseExposition(metricsText);
    const sampleNames = new Set(live.samples.map((s) => s.name));
    const queries = dashboardQueries(loadDashboard());
    expect(queries.length).toBeGreaterThan(0);
    const problems: string[] = [];

    for (const query of queries) {
      // Histogram reads name `_bucket` series, which must exist as written.
      const names = [...new Set(query.match(/\btollgate_[A-Za-z0-9_]+/g) ?? [])];
      for (const name of names) {
        if (!sampleNames.has(name)) problems.push(`${query}: no series named ${name}`);
      }
      // name{label="value", other=~"$var"}: an equality matcher needs a series with that
      // value; a regex matcher (template variables) needs the label to exist.
      for (const selector of query.matchAll(/\b(tollgate_[A-Za-z0-9_]+)\{([^}]*)\}/g)) {
        const name = selector[1] ?? '';
        const series = live.samples.filter((s) => s.name === name);
        for (const matcher of (selector[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"]*)"/g)) {
          const [, label = '', op, value = ''] = matcher;
          const ok = op === '='
            ? series.some((s) => s.labels[label] === value)
            : series.some((s) => label in s.labels);
          if (!ok) problems.push(`${query}: no ${name} series with ${label}${op ?? ''}"${value}"`);
        }
      }
      // sum by (a, b) (…): every tollgate series in the query carries a and b.
      for (const by of query.matchAll(/\bby\s*\(([^)]*)\)/g)) {
        const labels = (by[1] ?? '').split(',').map((l) => l.trim()).filter(Boolean);
        for (const name of names) {
          const series = live.samples.filter((s) => s.name === name);
          for (const label of labels) {
            if (!series.some((s) => label in s.labels)) problems.push(`${query}: ${name} has no label ${label} to group by`);
          }
        }
      }
      // Template variables: label_values(metric, label).
      for (const lv of query.matchAll(/label_values\(\s*([A-Za-z0-9_]+)\s*,\s*([A-Za-z0-9_]+)\s*\)/g)) {
        const [, name = '', label = ''] = lv;
        if (!live.samples.some((s) => s.name === name && label in s.labels)) problems.push(`${query}: no ${name} series with label ${label}`);
      }
    }
    expect(problems).toEqual([]);
  });

  test('the requests just sent are counted in the series the request panels read', () => {
    const live = parseExposition(metricsText);
    const count = (tier: string, outcome: string): number =>
      live.samples.find((s) => s.name === 'tollgate_requests_total' && s.labels.tier === tier && s.labels.outcome === outcome)?.value ?? 0;
    expect({
      proAllowed: count('pro', 'allowed'),
      freeAllowed: count('free', 'allowed'),
      freeLimited: count('free', 'limited'),
      unauthorized: count('none', 'unauthorized'),
      blocked: count('none', 'blocked'),
      proUpstreamError: count('pro', 'upstream_error'),
      freeOverloaded: count('free', 'overloaded'),
    // freeAllowed: 20 within the limit, and the shadow route's would-be refusal (proxied).
    }).toEqual({ proAllowed: 1, freeAllowed: 21, freeLimited: 1, unauthorized: 3, blocked: 1, proUpstreamError: 1, freeOverloaded: 1 });
    const gauge = (name: string, labels: Record<string, string> = {}): number | undefined =>
      live.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(gauge('tollgate_blocked_ips')).toBe(1);
    expect(gauge('tollgate_health_state', { state: 'NORMAL' })).toBe(1);
    expect(gauge('tollgate_health_state', { state: 'DEGRADED' })).toBe(0);
    expect(gauge('tollgate_store_breaker_state', { state: 'closed' })).toBe(1);
    // 22 proxied requests got a response head from the upstream (21 allowed, 1 let through by
    // shadow mode; the reset one did not); every one of the 29 was timed; 24 reached the
    // limiter (not the 401s, the 403, nor the request shed in CRITICAL, which is refused
    // before the store is asked).
    expect(gauge('tollgate_upstream_duration_seconds_count')).toBe(22);
    expect(gauge('tollgate_request_duration_seconds_count')).toBe(29);
    expect(gauge('tollgate_limiter_duration_seconds_count')).toBe(24);
  });
});

describe('the live /metrics output (SPEC §5)', () => {
  test('is the Prometheus text format, and every tollgate_* family has HELP text and a TYPE', () => {
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const live = parseExposition(metricsText);
    const tollgate = new Set(live.samples.filter((s) => s.name.startsWith('tollgate_')).map((s) => familyOf(s.name, live.type)));
    for (const name of [...live.type.keys(), ...live.help.keys()]) if (name.startsWith('tollgate_')) tollgate.add(name);
    expect(tollgate.size).toBeGreaterThanOrEqual(8);
    const lacking = [...tollgate].filter((name) => !(live.help.get(name)?.trim()) || !live.type.has(name)).sort();
    expect(lacking).toEqual([]);
    for (const name of tollgate) {
      expect({ name, type: live.type.get(name) }).toEqual({ name, type: expect.stringMatching(/^(counter|gauge|histogram)$/) });
    }
  });

  test('labels are bounded and never hold an API key, an IP address or a path', () => {
    const live = parseExposition(metricsText);
    const allowedValues: Record<string, RegExp> = {
      tier: /^(none|free|pro|enterprise)$/,
      outcome: /^(allowed|limited|unauthorized|blocked|upstream_error|unavailable|overloaded)$/,
      state: /^(NORMAL|DEGRADED|CRITICAL|closed|open|half_open)$/,
      file: /^(tiers|routes|tls)$/,
      from: /^(NORMAL|DEGRADED|CRITICAL)$/,
      to: /^(NORMAL|DEGRADED|CRITICAL)$/,
      cause: /^(auto|override|expiry)$/,
      result: /^(ok|rejected)$/,
      counter: /^(rate|window|quota|route)$/,
      policy: /^(rate|window|quota|route)$/,
      le: /^(\+Inf|\d+(\.\d+)?(e[-+]?\d+)?)$/,
    };
    const problems: string[] = [];
    for (const s of live.samples.filter((x) => x.name.startsWith('tollgate_'))) {
      for (const [label, value] of Object.entries(s.labels)) {
        const allowed = allowedValues[label];
        if (allowed === undefined || !allowed.test(value)) problems.push(`${s.name}{${label}="${value}"}`);
      }
    }
    // Every family, prom-client's process metrics included.
    const secrets = [PRO, FREE, ...BAD_KEYS, 'live-dashboard', CLIENT_IP, '127.0.0.1'];
    for (const s of live.samples) {
      for (const [label, value] of Object.entries(s.labels)) {
        const leak = secrets.find((secret) => value.includes(secret))
          ?? (/\b\d{1,3}(\.\d{1,3}){3}\b/.test(value) ? 'an IPv4 address' : undefined)
          ?? (/^[0-9a-f]*:[0-9a-f:]+$/i.test(value) ? 'an IPv6 address' : undefined)
          ?? (value.includes('/') ? 'a path' : undefined);
        if (leak !== undefined) problems.push(`${s.name}{${label}="${value}"} holds ${leak}`);
      }
    }
    // Nor anywhere else in the text (HELP lines, sample names).
    for (const secret of secrets) if (metricsText.includes(secret)) problems.push(`the output contains ${secret}`);
    expect(problems).toEqual([]);
  });

  // SPEC §5 holds the tollgate_* metrics to `promtool check metrics`; prom-client's default
  // nodejs_* metrics fail its lint on their own (gauges named `nodejs_active_handles_total`
  // and the like: "non-counter metrics should not have _total suffix"), which the project
  // does not control. promtool is required: without it this test fails and says how to
  // install it.
  test('passes `promtool check metrics`', () => {
    const promtool = requireBinary('promtool', 'prometheus');
    const check = (input: string) => {
      const r = spawnSync(promtool, ['check', 'metrics'], { input, encoding: 'utf8', timeout: 20000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr, error: r.error?.message };
    };
    // The tollgate_* families alone: no problem at all.
    const ours = metricsText
      .split('\n')
      .filter((line) => /^(# (HELP|TYPE) )?tollgate_/.test(line))
      .join('\n');
    expect(ours).toContain('# TYPE tollgate_requests_total counter');
    expect(check(`${ours}\n`)).toEqual({ status: 0, stdout: '', stderr: '', error: undefined });
    // The whole output parses (exit 1 would be a parse failure; 3 is lint findings), and
    // whatever promtool finds there is not about a tollgate_* metric.
    const whole = check(metricsText);
    expect([0, 3]).toContain(whole.status);
    const findings = `${whole.stdout}${whole.stderr}`.split('\n').filter(Boolean);
    expect(findings.filter((line) => line.includes('tollgate_'))).toEqual([]);
  });
});
