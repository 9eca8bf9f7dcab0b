import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { alertMetricNames, alertRules, loadRuleFile, runbookAnchors } from '../deploy/alertRules';
import { REPO_ROOT, startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest } from '../support/http';
import { sleep, waitFor } from '../support/processes';
import { startPrometheus, type PrometheusAlert, type PrometheusServer } from '../support/prometheus';
import { startRedis, type RedisServer } from '../support/redis';
import { startUpstream, type Upstream } from '../support/upstream';
import { HOUR_TIERS, createKey, get, setHealth, writeTiers } from './fixtures';
import { breakerState } from './probes';

/*
 * SPEC §12 end to end, without Docker: a real Prometheus (the Debian binary) loads the
 * repository's alert rules and scrapes a real gateway on a real Redis. Faults are real:
 * Redis is killed and restarted, the tiers file is broken and fixed.
 *
 * For speed the rules are rendered with every `for:` shortened to FOR_S seconds and
 * Prometheus evaluates every EVAL_S seconds and scrapes every SCRAPE_S second; expressions,
 * labels and annotations are the repository's, unchanged.
 */

const FOR_S = 6;
const EVAL_S = 2;
const SCRAPE_S = 1;
/** From the fault being visible on /metrics to `firing`: the next scrape, the next evaluation (pending), `for:`, one more evaluation. */
const FIRING_WITHIN_MS = (SCRAPE_S + FOR_S + 2 * EVAL_S) * 1000;
/** From the fault being over on /metrics to the alert being gone: the next scrape and two evaluations. */
const RESOLVED_WITHIN_MS = (SCRAPE_S + 2 * EVAL_S) * 1000;
/** Slack for 2 shared cores running Prometheus, Redis, the gateway and jest at once. */
const SLACK_MS = 4000;

let upstream: Upstream;
let redis: RedisServer;
let gw: GatewayProcess;
let prometheus: PrometheusServer;
let tiersFile: string;
let job: string;

/** An hour's window (nothing refills mid-test); free is refused outright in CRITICAL, as shipped. */
const TIERS = { ...HOUR_TIERS, tiers: { ...HOUR_TIERS.tiers, free: { ...HOUR_TIERS.tiers.free, critical: 0 } } };

/** The repository's rules with every `for:` set to FOR_S (and nothing else changed). */
function renderedRules(): string {
  const file = loadRuleFile();
  for (const group of file.groups) for (const rule of group.rules) rule.for = `${FOR_S}s`;
  return stringify(file);
}

/** The repository's scrape job name (TollgateDown reads `up{job=…}`), scraping this gateway. */
function renderedConfig(adminPort: number): string {
  const repo = parse(readFileSync(path.join(REPO_ROOT, 'observability', 'prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string }[]; rule_files: string[] };
  job = repo.scrape_configs[0]?.job_name ?? '';
  return stringify({
    global: { scrape_interval: `${SCRAPE_S}s`, scrape_timeout: `${SCRAPE_S}s`, evaluation_interval: `${EVAL_S}s` },
    rule_files: ['alerts.yml'],
    scrape_configs: [{ job_name: job, metrics_path: '/metrics', static_configs: [{ targets: [`127.0.0.1:${adminPort}`] }] }],
  });
}

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startUpstream(), startRedis()]);
  tiersFile = writeTiers(TIERS);
  gw = await startGateway({ env: { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, TIERS_FILE: tiersFile, KEYS_FILE: '' } });
  prometheus = await startPrometheus({ config: renderedConfig(gw.adminPort), files: { 'alerts.yml': renderedRules() } });
  await waitFor('Prometheus to scrape the gateway', async () => (await prometheus.targets()).some((t) => t.health === 'up'), 15000, 200);
}, 60000);

afterAll(async () => {
  await prometheus?.stop();
  await gw?.stop();
  await Promise.all([upstream?.close(), redis?.stop()]);
});

async function alertsNamed(name: string): Promise<PrometheusAlert[]> {
  return (await prometheus.alerts()).filter((a) => a.labels.alertname === name);
}

/** Polls until `name` is in `state` (with `labels`); resolves with the time it was first seen so. */
async function alertReaches(name: string, state: 'pending' | 'firing', labels: Record<string, string>, timeoutMs: number): Promise<number> {
  return waitFor(`${name} ${state} on Prometheus`, async () => {
    const found = (await alertsNamed(name)).some((a) => a.state === state && Object.entries(labels).every(([k, v]) => a.labels[k] === v));
    return found && Date.now();
  }, timeoutMs, 100);
}

async function alertGone(name: string, labels: Record<string, string>, timeoutMs: number): Promise<number> {
  return waitFor(`${name} resolved on Prometheus`, async () => {
    const found = (await alertsNamed(name)).some((a) => Object.entries(labels).every(([k, v]) => a.labels[k] === v));
    return !found && Date.now();
  }, timeoutMs, 100);
}

async function lastReloadOk(): Promise<number | undefined> {
  const line = (await get(`${gw.adminUrl}/metrics`)).body.split('\n').find((l) => l.startsWith('tollgate_config_last_reload_ok{file="tiers"} '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

test('nothing fires on a healthy gateway', async () => {
  // One evaluation after the first scrape at least.
  await sleep(2 * EVAL_S * 1000);
  expect(await prometheus.alerts()).toEqual([]);
});

test('Redis killed → TollgateStoreBreakerOpen pending, then firing within for: + two evaluations; Redis back → resolved', async () => {
  const { key } = await createKey(gw.adminUrl, 'pro');
  expect((await get(gw.url, key)).status).toBe(200); // the key is verified and cached
  await redis.kill();
  let breakerOpenAt = 0;
  try {
    // The breaker opens on failed store calls: send requests until it does.
    breakerOpenAt = await waitFor('breaker open', async () => {
      await Promise.all(Array.from({ length: 10 }, () => get(gw.url, key).catch(() => undefined)));
      return (await breakerState(gw)) !== 'closed' && Date.now();
    }, 10000, 50);
    const labels = { instance: `127.0.0.1:${gw.adminPort}`, job, severity: 'page' };
    const pendingAt = await alertReaches('TollgateStoreBreakerOpen', 'pending', labels, (SCRAPE_S + 2 * EVAL_S) * 1000 + SLACK_MS);
    const firingAt = await alertReaches('TollgateStoreBreakerOpen', 'firing', labels, FIRING_WITHIN_MS + SLACK_MS);
    // Not before its for: (counted from the first time it was seen pending, which can be
    // up to one evaluation late).
    expect(firingAt - pendingAt).toBeGreaterThanOrEqual((FOR_S - EVAL_S) * 1000);
    expect(firingAt - breakerOpenAt).toBeLessThanOrEqual(FIRING_WITHIN_MS + SLACK_MS);
    const [firing] = await alertsNamed('TollgateStoreBreakerOpen');
    expect(firing?.annotations.runbook_url).toBe('docs/runbook.md#tollgatestorebreakeropen');
    expect(firing?.annotations.summary).toBe(`tollgate on 127.0.0.1:${gw.adminPort} cannot use its store (Redis)`);
  } finally {
    await redis.restart();
  }
  const closedAt = await waitFor('breaker closed', async () => (await breakerState(gw)) === 'closed' && Date.now(), 10000, 50);
  const goneAt = await alertGone('TollgateStoreBreakerOpen', {}, RESOLVED_WITHIN_MS + SLACK_MS);
  expect(goneAt - closedAt).toBeLessThanOrEqual(RESOLVED_WITHIN_MS + SLACK_MS);
}, 60000);

test('a bad tiers file and a reload → TollgateConfigRejected{file="tiers"} fires; the file fixed → resolved', async () => {
  writeFileSync(tiersFile, '{ "tiers": ');
  try {
    const r = await httpRequest(`${gw.adminUrl}/admin/tiers/reload`, { method: 'POST' });
    expect(r.status).toBe(400);
    const rejectedAt = await waitFor('last_reload_ok 0', async () => (await lastReloadOk()) === 0 && Date.now(), 5000, 50);
    const labels = { file: 'tiers', severity: 'ticket', instance: `127.0.0.1:${gw.adminPort}` };
    const pendingAt = await alertReaches('TollgateConfigRejected', 'pending', labels, (SCRAPE_S + 2 * EVAL_S) * 1000 + SLACK_MS);
    const firingAt = await alertReaches('TollgateConfigRejected', 'firing', labels, FIRING_WITHIN_MS + SLACK_MS);
    expect(firingAt - pendingAt).toBeGreaterThanOrEqual((FOR_S - EVAL_S) * 1000);
    expect(firingAt - rejectedAt).toBeLessThanOrEqual(FIRING_WITHIN_MS + SLACK_MS);
    const [firing] = await alertsNamed('TollgateConfigRejected');
    expect(firing?.annotations.summary).toBe(`tollgate on 127.0.0.1:${gw.adminPort} rejected its tiers file`);
  } finally {
    writeFileSync(tiersFile, JSON.stringify(TIERS));
  }
  expect((await httpRequest(`${gw.adminUrl}/admin/tiers/reload`, { method: 'POST' })).status).toBe(200);
  const fixedAt = await waitFor('last_reload_ok 1', async () => (await lastReloadOk()) === 1 && Date.now(), 5000, 50);
  const goneAt = await alertGone('TollgateConfigRejected', {}, RESOLVED_WITHIN_MS + SLACK_MS);
  expect(goneAt - fixedAt).toBeLessThanOrEqual(RESOLVED_WITHIN_MS + SLACK_MS);
}, 60000);

test('every runbook_url points at a heading of docs/runbook.md', () => {
  const anchors = runbookAnchors(readFileSync(path.join(REPO_ROOT, 'docs', 'runbook.md'), 'utf8'));
  const missing = alertRules()
    .map((r) => r.annotations?.runbook_url ?? '')
    .filter((url) => !anchors.has(url.replace(/^docs\/runbook\.md#/, '')));
  expect(missing).toEqual([]);
});

test('CRITICAL pinned → TollgateNotNormal fires as a ticket and as a page, shed requests → TollgateShedding fires; unpinned → TollgateNotNormal resolved', async () => {
  const free = await createKey(gw.adminUrl, 'free');
  expect((await setHealth(gw.adminUrl, 'CRITICAL')).status).toBe(200);
  try {
    // Overloaded: free's critical limit is 0. Shed once, and again after a scrape: Prometheus'
    // rate() cannot count the first sample of a new series, only increases after it.
    expect((await get(gw.url, free.key)).status).toBe(503);
    await sleep(2 * SCRAPE_S * 1000);
    expect((await get(gw.url, free.key)).status).toBe(503);
    const instance = `127.0.0.1:${gw.adminPort}`;
    await alertReaches('TollgateNotNormal', 'pending', { instance, state: 'CRITICAL', severity: 'page' }, (SCRAPE_S + 2 * EVAL_S) * 1000 + SLACK_MS);
    await alertReaches('TollgateNotNormal', 'firing', { instance, state: 'CRITICAL', severity: 'page' }, FIRING_WITHIN_MS + SLACK_MS);
    await alertReaches('TollgateNotNormal', 'firing', { instance, state: 'CRITICAL', severity: 'ticket' }, 2 * EVAL_S * 1000 + SLACK_MS);
    // One shed request keeps the 5-minute rate above 0 for 5 minutes: it fires after for:.
    await alertReaches('TollgateShedding', 'firing', { job, severity: 'ticket' }, FIRING_WITHIN_MS + SLACK_MS);
  } finally {
    expect((await httpRequest(`${gw.adminUrl}/admin/health/override`, { method: 'DELETE' })).status).toBe(200);
  }
  await alertGone('TollgateNotNormal', {}, RESOLVED_WITHIN_MS + SLACK_MS);
}, 60000);

test('every metric an alert reads is exported by the live gateway, with the label values the alert matches on', async () => {
  // An upstream failure, so the outcome TollgateUpstreamErrors counts exists.
  const pro = await createKey(gw.adminUrl, 'pro');
  expect((await get(`${gw.url}/reset`, pro.key)).status).toBe(502);
  const text = (await get(`${gw.adminUrl}/metrics`)).body;
  const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const labelsOf = (name: string): Set<string> => {
    const labels = new Set<string>();
    for (const line of samples.filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))) {
      for (const m of line.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(m[1] ?? '');
    }
    return labels;
  };
  const problems: string[] = [];
  for (const rule of alertRules()) {
    for (const name of alertMetricNames(rule.expr)) {
      if (name === 'up') continue; // Prometheus' own, per scrape target
      const labels = labelsOf(name);
      if (!samples.some((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))) {
        problems.push(`${rule.alert}: ${name} is not on /metrics`);
        continue;
      }
      // The labels it matches on exist, and an equality matcher's value too (the test before
      // shed requests, the 502 above is an upstream_error).
      for (const selector of rule.expr.matchAll(new RegExp(`\\b${name}\\{([^}]*)\\}`, 'g'))) {
        for (const matcher of (selector[1] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"]*)"/g)) {
          const [, label = '', op, value = ''] = matcher;
          if (!labels.has(label)) problems.push(`${rule.alert}: ${name} has no label ${label}`);
          else if (op === '=' && !samples.some((l) => l.startsWith(`${name}{`) && l.includes(`${label}="${value}"`))) problems.push(`${rule.alert}: no ${name} series with ${label}="${value}"`);
        }
      }
    }
  }
  expect(problems).toEqual([]);
});

// Last: it stops the gateway.
test('the gateway stopped → TollgateDown fires for its instance, under the repository\'s scrape job name', async () => {
  expect(await gw.stop()).toBe(0);
  const stoppedAt = Date.now();
  const labels = { alertname: 'TollgateDown', job, instance: `127.0.0.1:${gw.adminPort}`, severity: 'page' };
  await alertReaches('TollgateDown', 'pending', labels, (SCRAPE_S + 2 * EVAL_S) * 1000 + SLACK_MS);
  const firingAt = await alertReaches('TollgateDown', 'firing', labels, FIRING_WITHIN_MS + SLACK_MS);
  expect(firingAt - stoppedAt).toBeLessThanOrEqual(FIRING_WITHIN_MS + SLACK_MS);
}, 30000);
