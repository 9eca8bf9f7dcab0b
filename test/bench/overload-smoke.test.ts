/**
 * Smoke test of the overload experiment (issue 12, `npm run overload`): the `--smoke` preset
 * (every default mode of the fault scenario, 11 s of load each) must run to completion and
 * write a well-formed report. No assertion on the figures: on a shared 2-core runner they say
 * nothing, and `--smoke` is too short to mean anything anyway (docs/overload.md says why the
 * suite runs --smoke, not --quick). Results go to a temp dir, not bench-results/.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { RunResult, Target } from '../../scripts/overload/analyze';

const ROOT = path.resolve(__dirname, '..', '..');
const MODES = ['none', 'manual', 'auto'];
const PHASES = ['before', 'fault', 'after'];
const GROUPS = ['free', 'pro-within', 'pro-above', 'enterprise'];
const RUN_TIMEOUT_MS = 150_000;

interface Report {
  scenario: string;
  preset: string;
  timeline: { faults: Array<[number, number]>; phases: Array<{ name: string; from: number; to: number }> };
  groups: Array<{ name: string }>;
  runs: Array<{ mode: string; error?: string; seconds: number; polls: unknown[]; result: RunResult; targets: Target[] }>;
}

function runOverload(outDir: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'overload.js'), '--smoke', '--out', outDir], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (d: Buffer) => {
      output += d.toString();
      if (output.length > 200_000) output = output.slice(-200_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    // SIGTERM lets overload.js stop its own children; SIGKILL if it does not go.
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, RUN_TIMEOUT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

describe('npm run overload -- --smoke', () => {
  let outDir: string;
  let run: { code: number | null; signal: NodeJS.Signals | null; output: string };
  let report: Report;

  beforeAll(async () => {
    outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-overload-test-'));
    run = await runOverload(outDir);
  }, RUN_TIMEOUT_MS + 15_000);

  afterAll(() => {
    if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
  });

  it('exits 0 and writes fault-smoke.json, .md and .svg', () => {
    if (run.code !== 0) throw new Error(`overload exited ${run.code ?? run.signal}:\n${run.output.slice(-4000)}`);
    expect(fs.readdirSync(outDir).sort()).toEqual(['fault-smoke.json', 'fault-smoke.md', 'fault-smoke.svg']);
    report = JSON.parse(fs.readFileSync(path.join(outDir, 'fault-smoke.json'), 'utf8')) as Report;
    expect(report).toEqual(expect.objectContaining({ scenario: 'fault', preset: 'smoke' }));
  });

  it('has every mode with figures for every phase and group', () => {
    expect(report.runs.map((r) => [r.mode, r.error])).toEqual(MODES.map((m) => [m, undefined]));
    expect(report.timeline.phases.map((p) => p.name)).toEqual(PHASES);
    expect(report.groups.map((g) => g.name)).toEqual(GROUPS);
    for (const r of report.runs) {
      expect(r.polls.length).toBeGreaterThan(0);
      expect(r.result.series.state).toHaveLength(r.seconds);
      for (const phase of PHASES) {
        const p = r.result.phases[phase];
        expect([r.mode, phase, typeof p.withinContractGoodput]).toEqual([r.mode, phase, 'number']);
        for (const g of GROUPS) expect([r.mode, phase, g, p.groups[g].sent > 0]).toEqual([r.mode, phase, g, true]);
      }
      expect(typeof r.result.transitionCount).toBe('number');
      expect(typeof r.result.flaps).toBe('number');
      expect(typeof r.result.overloadRefusals).toBe('number');
      expect(r.targets.map((t) => typeof t.met)).toEqual(['boolean', 'boolean', 'boolean', 'boolean', 'boolean']);
    }
  });

  it('writes a markdown summary row per mode and an SVG panel per mode', () => {
    const md = fs.readFileSync(path.join(outDir, 'fault-smoke.md'), 'utf8');
    expect(md).toMatch(/^# Overload experiment: scenario `fault`, preset `smoke`/);
    expect(md).toContain(`| target | ${MODES.join(' | ')} |`);
    expect(md).toContain('| mode | within-contract goodput, before | within-contract goodput, fault | within-contract goodput, after | detect | recover |');
    for (const m of MODES) expect(md).toMatch(new RegExp(`^\\| ${m} \\| \\d+(\\.\\d)? % \\|`, 'm'));
    const svg = fs.readFileSync(path.join(outDir, 'fault-smoke.svg'), 'utf8');
    expect(svg).toMatch(/^<\?xml[^>]*\?>\s*<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const m of MODES) expect(svg).toContain(`font-weight="bold">${m}</text>`);
    // every element opened is closed (self-closing or with its end tag)
    const opened = (svg.match(/<(rect|path|line|text|svg)\b[^>]*[^/]>/g) ?? []).length;
    const closed = (svg.match(/<\/(rect|path|line|text|svg)>/g) ?? []).length;
    expect(closed).toBe(opened);
  });
});
