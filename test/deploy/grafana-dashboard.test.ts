// observability/grafana: the dashboard only queries metrics SPEC §5 promises, covers the
// panels operators need, and the provisioning files load it from where compose mounts it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { allPanels, dashboardMetricNames, loadDashboard, panelExprs } from './dashboardQueries';
import type { DashboardPanel } from './dashboardQueries';

const ROOT = resolve(__dirname, '..', '..');
const GRAFANA = join(ROOT, 'observability', 'grafana');

// SPEC §5, by hand. A later end-to-end test checks the same dashboard against a live
// /metrics; this one keeps the dashboard honest while the gateway is being written.
const SPEC_METRICS = [
  'tollgate_requests_total',
  'tollgate_request_duration_seconds',
  'tollgate_limiter_duration_seconds',
  'tollgate_upstream_duration_seconds',
  'tollgate_health_state',
  'tollgate_store_breaker_state',
  'tollgate_store_fallback_total',
  'tollgate_blocked_ips',
  // SPEC §8
  'tollgate_health_automatic_state',
  'tollgate_health_transitions_total',
  'tollgate_upstream_inflight',
  'tollgate_concurrency_limit',
  // SPEC §9 (issue 13: refusals by tier and counter)
  'tollgate_limit_refusals_total',
  // SPEC §10 (issue 14: would-be refusals in shadow mode)
  'tollgate_shadow_refusals_total',
  // SPEC §12
  'tollgate_config_reloads_total',
  'tollgate_config_last_reload_ok',
];
const HISTOGRAMS = ['tollgate_request_duration_seconds', 'tollgate_limiter_duration_seconds', 'tollgate_upstream_duration_seconds'];

const dashboard = loadDashboard();
const panels = allPanels(dashboard.panels);
const exprs = panels.flatMap(panelExprs);

describe('Grafana dashboard', () => {
  it('parses and has panels with queries', () => {
    expect(dashboard.uid).toBe('tollgate');
    expect(panels.length).toBeGreaterThan(0);
    expect(exprs.length).toBeGreaterThan(0);
  });

  it('queries only metrics SPEC §5 defines', () => {
    const used = dashboardMetricNames(SPEC_METRICS);
    expect(used.length).toBeGreaterThan(0);
    for (const name of used) expect({ name, inSpec: SPEC_METRICS.includes(name) }).toEqual({ name, inSpec: true });
  });

  it('reads histograms through their _bucket series', () => {
    for (const expr of exprs) {
      for (const histogram of HISTOGRAMS) {
        // A bare histogram name (no suffix) is not a series Prometheus has.
        expect(expr).not.toMatch(new RegExp(`\\b${histogram}\\b(?!_)`));
      }
    }
  });

  it('has the panels operators need', () => {
    const find = (test: (expr: string) => boolean): DashboardPanel | undefined => panels.find((panel) => panelExprs(panel).some(test));

    expect(find((e) => /tollgate_requests_total/.test(e) && /by \(tier, outcome\)/.test(e))).toBeDefined();
    expect(find((e) => /tollgate_requests_total\{[^}]*outcome="limited"/.test(e))).toBeDefined();
    // SPEC §8: the automatic state, its signals' effect and shedding by tier.
    expect(find((e) => /tollgate_health_automatic_state/.test(e))).toBeDefined();
    expect(find((e) => /tollgate_requests_total\{[^}]*outcome="overloaded"/.test(e) && /by \(tier\)/.test(e))).toBeDefined();
    expect(find((e) => /tollgate_concurrency_limit/.test(e))).toBeDefined();
    // SPEC §9: refusals by tier and by the counter that refused.
    expect(find((e) => /tollgate_limit_refusals_total/.test(e) && /by \(tier, counter\)/.test(e))).toBeDefined();
    // SPEC §10: what shadow mode let through, read while rolling out (docs/routes.md).
    expect(find((e) => /tollgate_shadow_refusals_total/.test(e) && /by \(tier, policy\)/.test(e))).toBeDefined();
    for (const histogram of ['tollgate_limiter_duration_seconds', 'tollgate_upstream_duration_seconds']) {
      for (const q of ['0.5', '0.99']) {
        const pattern = new RegExp(`histogram_quantile\\(${q.replace('.', '\\.')},.*${histogram}_bucket`);
        expect({ histogram, q, panel: find((e) => pattern.test(e))?.title }).toEqual({ histogram, q, panel: expect.any(String) });
      }
    }
    expect(find((e) => e.includes('tollgate_store_breaker_state'))).toBeDefined();
    expect(find((e) => e.includes('tollgate_health_state'))).toBeDefined();
  });

  it('has an "Alerts" row with the alerts Prometheus holds and the conditions of the alerts (SPEC §12)', () => {
    const rowIndex = dashboard.panels.findIndex((panel) => panel.type === 'row' && panel.title === 'Alerts');
    expect(rowIndex).toBeGreaterThanOrEqual(0);
    const row = dashboard.panels[rowIndex];
    // The row's panels: nested when collapsed, else the panels after it up to the next row.
    const next = dashboard.panels.findIndex((panel, i) => i > rowIndex && panel.type === 'row');
    const inRow = [...(row.panels ?? []), ...dashboard.panels.slice(rowIndex + 1, next === -1 ? undefined : next)];
    const rowExprs = inRow.flatMap(panelExprs);
    expect(rowExprs.some((e) => /\bALERTS\{[^}]*alertstate="firing"/.test(e))).toBe(true);
    expect(rowExprs.some((e) => /\bALERTS\{[^}]*alertname=~"Tollgate\.\*"/.test(e))).toBe(true);
    expect(rowExprs.some((e) => e.includes('tollgate_config_last_reload_ok'))).toBe(true);
    expect(rowExprs.some((e) => /outcome="upstream_error"/.test(e) && /outcome=~"allowed\|upstream_error"/.test(e))).toBe(true);
    expect(rowExprs.some((e) => /delta\(tollgate_blocked_ips\[10m\]\)/.test(e))).toBe(true);
  });

  it('uses the provisioned Prometheus data source', () => {
    const datasources = readdirSync(join(GRAFANA, 'provisioning', 'datasources'))
      .map((file) => parse(readFileSync(join(GRAFANA, 'provisioning', 'datasources', file), 'utf8')) as { datasources: { uid: string; type: string }[] })
      .flatMap((doc) => doc.datasources);
    const prometheusUids = datasources.filter((ds) => ds.type === 'prometheus').map((ds) => ds.uid);
    expect(prometheusUids.length).toBeGreaterThan(0);
    const uids = panels.filter((p) => p.type !== 'row')
      .flatMap((panel) => [panel.datasource?.uid, ...(panel.targets ?? []).map((t) => t.datasource?.uid)])
      .filter((uid): uid is string => uid !== undefined);
    expect(uids.length).toBeGreaterThan(0);
    for (const uid of uids) expect(prometheusUids).toContain(uid);
  });
});

describe('Grafana provisioning', () => {
  it('loads dashboards from the folder compose mounts the dashboard JSON into', () => {
    const providerDir = join(GRAFANA, 'provisioning', 'dashboards');
    const providers = readdirSync(providerDir)
      .map((file) => parse(readFileSync(join(providerDir, file), 'utf8')) as { providers: { type: string; options: { path: string } }[] })
      .flatMap((doc) => doc.providers);
    const paths = providers.filter((p) => p.type === 'file').map((p) => p.options.path);
    expect(paths.length).toBeGreaterThan(0);

    const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { volumes?: string[] }> };
    const mounts = (compose.services.grafana.volumes ?? []).map((volume) => {
      const [source, target] = volume.split(':');
      return { source, target };
    });
    const dashboardsMount = mounts.find((mount) => mount.source === './observability/grafana/dashboards');
    expect(dashboardsMount).toBeDefined();
    expect(paths).toContain(dashboardsMount?.target);
    expect(existsSync(join(ROOT, 'observability', 'grafana', 'dashboards', 'tollgate.json'))).toBe(true);

    const provisioningMount = mounts.find((mount) => mount.source === './observability/grafana/provisioning');
    expect(provisioningMount?.target).toBe('/etc/grafana/provisioning');
  });

  it('points the data source at the compose Prometheus service', () => {
    const file = join(GRAFANA, 'provisioning', 'datasources', 'prometheus.yml');
    const doc = parse(readFileSync(file, 'utf8')) as { datasources: { url: string }[] };
    const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, unknown> };
    const host = new URL(doc.datasources[0].url).hostname;
    expect(compose.services).toHaveProperty(host);
  });
});
