// The PromQL queries of observability/grafana/dashboards/tollgate.json and the tollgate_*
// metric names they use. Shared by the static dashboard test and a later test that checks
// the names against a live /metrics.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const DASHBOARD_FILE = resolve(__dirname, '..', '..', 'observability', 'grafana', 'dashboards', 'tollgate.json');

export interface DashboardPanel {
  title: string;
  type: string;
  datasource?: { uid?: string };
  targets?: { expr?: string; datasource?: { uid?: string } }[];
  panels?: DashboardPanel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: DashboardPanel[];
  templating?: { list: { query?: unknown; definition?: string }[] };
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

/** Panels, including those nested in collapsed rows. */
export function allPanels(panels: DashboardPanel[]): DashboardPanel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

export function panelExprs(panel: DashboardPanel): string[] {
  return (panel.targets ?? []).map((target) => target.expr ?? '').filter(Boolean);
}

/** Every PromQL query: panel targets and template-variable queries. */
export function dashboardQueries(dashboard: Dashboard): string[] {
  const variables = (dashboard.templating?.list ?? []).flatMap((variable) => {
    const query = variable.query;
    const text = typeof query === 'object' && query !== null ? String((query as { query?: unknown }).query ?? '') : String(query ?? '');
    return [variable.definition ?? '', text];
  });
  return [...allPanels(dashboard.panels).flatMap(panelExprs), ...variables].filter(Boolean);
}

/**
 * The metric families named in a query: `tollgate_x_bucket`/`_sum`/`_count` → `tollgate_x`
 * (the name in /metrics' `# TYPE` line), unless the full name is itself in `known`.
 */
export function metricNames(expr: string, known: readonly string[] = []): string[] {
  const names = expr.match(/\btollgate_[A-Za-z0-9_]+/g) ?? [];
  return names.map((name) => (known.includes(name) ? name : name.replace(/_(bucket|sum|count)$/, '')));
}

/** The distinct metric families the dashboard queries. */
export function dashboardMetricNames(known: readonly string[] = []): string[] {
  return [...new Set(dashboardQueries(loadDashboard()).flatMap((expr) => metricNames(expr, known)))].sort();
}
