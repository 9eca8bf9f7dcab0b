// observability/alerts.yml (SPEC §12): promtool accepts it and its unit tests
// (observability/alerts.test.yml) pass; every alert of SPEC §12 is there with a severity,
// its annotations and a runbook section that exists; the rules read only tollgate's metrics;
// Alertmanager routes page and ticket to different receivers. The same rules against a live
// gateway: test/e2e/alerts.e2e.test.ts.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { requireBinary } from '../support/binaries';
import { ALERTS_FILE, alertMetricNames, alertRules, runbookAnchors } from './alertRules';
import { allPanels, loadDashboard } from './dashboardQueries';

const ROOT = resolve(__dirname, '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** SPEC §12's table, with the `for:` of each rule (TollgateIpBlocksSpike: see its comment). */
const SPEC_ALERTS: Record<string, string> = {
  TollgateDown: '1m',
  TollgateStoreBreakerOpen: '1m',
  TollgateNotNormal: '10m',
  TollgateUpstreamErrors: '5m',
  TollgateShedding: '5m',
  TollgateHighLatency: '10m',
  TollgateConfigRejected: '1m',
  // The 10 minutes are the window of the rise; a 10-minute `for:` would never see a rise
  // that lasts only while blocks (5 minutes) accumulate.
  TollgateIpBlocksSpike: '2m',
};

const rules = alertRules();

function promtool(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(requireBinary('promtool', 'prometheus'), args, { cwd: ROOT, encoding: 'utf8', timeout: 60000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}${r.error?.message ?? ''}` };
}

describe('promtool', () => {
  it('`promtool check rules observability/alerts.yml` passes', () => {
    const r = promtool(['check', 'rules', ALERTS_FILE]);
    expect(r).toEqual({ status: 0, out: expect.stringContaining(`SUCCESS: ${rules.length} rules found`) });
  });

  it('`promtool test rules observability/alerts.test.yml` passes', () => {
    const r = promtool(['test', 'rules', 'observability/alerts.test.yml']);
    expect(r).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
  });

  it('`promtool check config observability/prometheus.yml` passes and finds the rules', () => {
    const r = promtool(['check', 'config', 'observability/prometheus.yml']);
    expect(r).toEqual({ status: 0, out: expect.stringContaining('SUCCESS: 1 rule files found') });
  });
});

describe('observability/alerts.yml', () => {
  it('has every alert of SPEC §12, with the for: of the table, and nothing else', () => {
    const names = [...new Set(rules.map((r) => r.alert))].sort();
    expect(names).toEqual(Object.keys(SPEC_ALERTS).sort());
    for (const rule of rules) expect({ alert: rule.alert, for: rule.for }).toEqual({ alert: rule.alert, for: SPEC_ALERTS[rule.alert] });
  });

  it('gives every rule a page/ticket severity, a summary, a description and a runbook_url', () => {
    for (const rule of rules) {
      expect({ alert: rule.alert, severity: rule.labels?.severity }).toEqual({ alert: rule.alert, severity: expect.stringMatching(/^(page|ticket)$/) });
      for (const key of ['summary', 'description', 'runbook_url']) {
        expect({ alert: rule.alert, key, value: rule.annotations?.[key] }).toEqual({ alert: rule.alert, key, value: expect.stringMatching(/\S/) });
      }
    }
  });

  it('pages for TollgateNotNormal only when CRITICAL', () => {
    const notNormal = rules.filter((r) => r.alert === 'TollgateNotNormal');
    expect(notNormal.map((r) => r.labels?.severity).sort()).toEqual(['page', 'ticket']);
    expect(notNormal.find((r) => r.labels?.severity === 'page')?.expr).toMatch(/state="CRITICAL"/);
    expect(notNormal.find((r) => r.labels?.severity === 'ticket')?.expr).toMatch(/state!="NORMAL"/);
  });

  it("points every runbook_url at a heading of docs/runbook.md, each alert at its own", () => {
    const anchors = runbookAnchors(read('docs/runbook.md'));
    for (const rule of rules) {
      const url = rule.annotations?.runbook_url ?? '';
      const match = /^docs\/runbook\.md#([a-z0-9-]+)$/.exec(url);
      expect({ alert: rule.alert, url, anchor: match?.[1] }).toEqual({ alert: rule.alert, url, anchor: rule.alert.toLowerCase() });
      expect({ alert: rule.alert, headingExists: anchors.has(match?.[1] ?? '') }).toEqual({ alert: rule.alert, headingExists: true });
    }
  });

  it('reads only tollgate_* metrics, and `up` of the job observability/prometheus.yml scrapes', () => {
    const prometheus = parse(read('observability/prometheus.yml')) as { scrape_configs: { job_name: string }[] };
    const jobs = prometheus.scrape_configs.map((s) => s.job_name);
    for (const rule of rules) {
      for (const name of alertMetricNames(rule.expr)) {
        expect({ alert: rule.alert, name, ours: name.startsWith('tollgate_') || name === 'up' }).toEqual({ alert: rule.alert, name, ours: true });
      }
    }
    const down = rules.find((r) => r.alert === 'TollgateDown');
    const job = /up\{job="([^"]+)"\}/.exec(down?.expr ?? '')?.[1];
    expect(jobs).toContain(job);
  });

  it('has a promtool unit test per alert that sees it firing and sees it not firing', () => {
    const doc = parse(read('observability/alerts.test.yml')) as {
      rule_files: string[];
      tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
    };
    expect(doc.rule_files).toEqual(['alerts.yml']);
    const checks = doc.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of Object.keys(SPEC_ALERTS)) {
      const mine = checks.filter((c) => c.alertname === alert);
      expect({ alert, firing: mine.some((c) => (c.exp_alerts ?? []).length > 0), quiet: mine.filter((c) => (c.exp_alerts ?? []).length === 0).length >= 2 })
        .toEqual({ alert, firing: true, quiet: true });
    }
  });
});

describe('docs/runbook.md', () => {
  it('has a section per alert saying what it means, what to look at, what to do and when it is over', () => {
    const text = read('docs/runbook.md');
    for (const alert of Object.keys(SPEC_ALERTS)) {
      const start = text.indexOf(`\n## ${alert}\n`);
      expect({ alert, found: start >= 0 }).toEqual({ alert, found: true });
      const end = text.indexOf('\n## ', start + 1);
      const section = text.slice(start, end === -1 ? undefined : end);
      for (const part of ['**What it means.**', '**Look first.**', '**What to do.**', '**It is over when**']) {
        expect({ alert, part, present: section.includes(part) }).toEqual({ alert, part, present: true });
      }
      expect({ alert, adminCall: /curl [^\n]*\$A\//.test(section) }).toEqual({ alert, adminCall: true });
    }
  });

  it('names only Grafana panels that exist on the dashboard', () => {
    const titles = new Set(allPanels(loadDashboard().panels).map((p) => p.title));
    const named = [...read('docs/runbook.md').matchAll(/\*\*Grafana › ([^*]+)\*\*/g)].map((m) => (m[1] ?? '').replace(/\s+/g, ' ').trim());
    expect(named.length).toBeGreaterThanOrEqual(8);
    expect(named.filter((title) => !titles.has(title))).toEqual([]);
  });
});

describe('observability/alertmanager.yml', () => {
  interface Route { receiver?: string; matchers?: string[]; routes?: Route[] }
  const config = parse(read('observability/alertmanager.yml')) as {
    route: Route;
    receivers: { name: string }[];
    inhibit_rules?: { source_matchers: string[]; target_matchers: string[]; equal: string[] }[];
  };

  /** The receiver of an alert with these labels: first matching child route, else the parent's. */
  function receiverFor(labels: Record<string, string>, route: Route = config.route): string | undefined {
    for (const child of route.routes ?? []) {
      const matches = (child.matchers ?? []).every((m) => {
        const eq = /^(\w+)="([^"]*)"$/.exec(m);
        if (eq === null) throw new Error(`matcher this test does not read: ${m}`);
        return labels[eq[1] ?? ''] === eq[2];
      });
      if (matches) return receiverFor(labels, child) ?? child.receiver;
    }
    return route.receiver;
  }

  it('routes severity page and ticket to different receivers, both defined', () => {
    const page = receiverFor({ alertname: 'TollgateDown', severity: 'page' });
    const ticket = receiverFor({ alertname: 'TollgateConfigRejected', severity: 'ticket' });
    expect(page).toBeDefined();
    expect(ticket).toBeDefined();
    expect(page).not.toBe(ticket);
    const names = config.receivers.map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining([page, ticket]));
    // Every receiver severity the rules use is routed on purpose, not by the default.
    const severities = new Set(rules.map((r) => r.labels?.severity));
    for (const severity of severities) {
      expect(config.route.routes?.some((r) => (r.matchers ?? []).includes(`severity="${String(severity)}"`))).toBe(true);
    }
  });

  it('says its receivers are placeholders to replace', () => {
    const text = read('observability/alertmanager.yml');
    expect(text).toMatch(/PLACEHOLDER/);
    for (const receiver of config.receivers) {
      expect(Object.keys(receiver)).toEqual(['name']);
    }
  });

  it('does not send the TollgateNotNormal ticket while its page fires for the same instance', () => {
    expect(config.inhibit_rules).toContainEqual({
      source_matchers: ['severity="page"'],
      target_matchers: ['severity="ticket"'],
      equal: expect.arrayContaining(['alertname', 'instance']),
    });
  });
});
