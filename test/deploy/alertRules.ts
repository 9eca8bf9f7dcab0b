// observability/alerts.yml read as data: its rules, the metric names their expressions read,
// and the anchors of docs/runbook.md. Shared by the static test (alerts.test.ts) and the
// end-to-end test against a live gateway and Prometheus (test/e2e/alerts.e2e.test.ts).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

const ROOT = resolve(__dirname, '..', '..');
/** Relative to the repository root. */
export const ALERTS_FILE = 'observability/alerts.yml';

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleFile {
  groups: { name: string; interval?: string; rules: AlertRule[] }[];
}

export function loadRuleFile(): RuleFile {
  return parse(readFileSync(join(ROOT, ALERTS_FILE), 'utf8')) as RuleFile;
}

export function alertRules(file: RuleFile = loadRuleFile()): AlertRule[] {
  return file.groups.flatMap((g) => g.rules);
}

// PromQL words that are not metric names when not followed by "(".
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric (series) names an expression reads, as written (`x_bucket` stays `x_bucket`):
 * identifiers that are not functions, keywords, label names or durations.
 */
export function alertMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // range durations
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // grouping labels
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![a-zA-Z0-9_:.])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    const isFunction = /^\s*\(/.test(stripped.slice((m.index ?? 0) + word.length));
    if (!isFunction && !KEYWORDS.has(word.toLowerCase())) names.add(word);
  }
  return [...names].sort();
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
export function runbookAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    anchors.add((m[1] ?? '').toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'));
  }
  return anchors;
}
