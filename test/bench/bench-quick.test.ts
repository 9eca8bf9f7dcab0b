/**
 * Smoke test of the side-by-side benchmark (issue 6): `node scripts/bench.js --quick`
 * must run every system and scenario and exit 0. No assertions on speed — only that
 * each row exists and the systems that must work (direct, the bare http-proxy baseline
 * and tollgate itself) served requests, and that each load row carries its rounds (one under
 * --quick) and a ratio to http-proxy taken from them. Results go to a temp dir so a real
 * bench-results/latest.json is not overwritten by the test suite.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..', '..');
const SYSTEMS = ['direct', 'http-proxy', 'rlflex', 'fastify', 'tollgate'];
const SCENARIOS = ['allowed-1key', 'allowed-1000keys', 'rejected'];
const MUST_SERVE = ['direct', 'http-proxy', 'tollgate'];
const RUN_TIMEOUT_MS = 240_000;

interface Run {
  system: string;
  scenario: string;
  ok: boolean;
  round: number;
  reqPerSec?: number | null;
  error?: string;
}

interface Row {
  system: string;
  scenario: string;
  ok: boolean;
  reqPerSec?: number | null;
  error?: string;
  rounds: Run[];
  ratioByRound?: (number | null)[] | null;
  ratioToHttpProxy?: number | null;
}

interface Report {
  config: { rounds: number; quick: boolean };
  results: Row[];
  latency: Row[];
  systems: Record<string, { status: string; error?: string }>;
  machine: { cpuModel: string; cpuCount: number; node: string; date: string };
}

function runBench(outDir: string, extraArgs: string[] = []): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'bench.js'), '--quick', '--out', outDir, ...extraArgs], {
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
    // SIGTERM lets bench.js stop its own children; SIGKILL if it does not go.
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

describe('scripts/bench.js --quick', () => {
  let outDir: string;
  let run: { code: number | null; signal: NodeJS.Signals | null; output: string };
  let report: Report | undefined;

  beforeAll(async () => {
    outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-test-'));
    run = await runBench(outDir);
    const file = path.join(outDir, 'latest.json');
    if (fs.existsSync(file)) report = JSON.parse(fs.readFileSync(file, 'utf8')) as Report;
  }, RUN_TIMEOUT_MS + 15_000);

  afterAll(() => {
    if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
  });

  it('exits 0 and writes latest.json and latest.md', () => {
    if (run.code !== 0) throw new Error(`bench exited ${run.code ?? run.signal}:\n${run.output.slice(-4000)}`);
    expect(report).toBeDefined();
    expect(fs.existsSync(path.join(outDir, 'latest.md'))).toBe(true);
    expect(report!.machine.cpuCount).toBeGreaterThan(0);
    expect(report!.machine.node).toBe(process.version);
  });

  it('has a result row for every system and scenario', () => {
    expect(report).toBeDefined();
    for (const system of SYSTEMS) {
      for (const scenario of SCENARIOS) {
        const row = report!.results.find((r) => r.system === system && r.scenario === scenario);
        expect(row).toEqual(expect.objectContaining({ system, scenario }));
      }
    }
    for (const system of ['http-proxy', 'tollgate']) {
      expect(report!.latency.find((r) => r.system === system)).toBeDefined();
    }
  });

  it.each(MUST_SERVE)('%s served requests in every scenario', (system) => {
    expect(report).toBeDefined();
    for (const scenario of SCENARIOS) {
      const row = report!.results.find((r) => r.system === system && r.scenario === scenario);
      const why = row && !row.ok ? ` (${row.error})` : '';
      expect({ scenario, reqPerSec: row?.reqPerSec, why }).toEqual({ scenario, reqPerSec: expect.any(Number), why: '' });
      expect(row!.reqPerSec).toBeGreaterThan(0);
    }
  });

  it('keeps every round of a load row and takes × http-proxy from the rounds', () => {
    expect(report).toBeDefined();
    expect(report!.config).toEqual(expect.objectContaining({ quick: true, rounds: 1 }));
    for (const row of report!.results) {
      expect(row.rounds.map((r) => [r.system, r.scenario, r.round])).toEqual([[row.system, row.scenario, 1]]);
      expect(row.ratioByRound).toHaveLength(row.rounds.length);
      const base = report!.results.find((r) => r.system === 'http-proxy' && r.scenario === row.scenario)!;
      if (!row.ok || !base.ok) continue;
      // one round: the median of the per-round ratios is that round's ratio
      expect(row.ratioToHttpProxy).toBeCloseTo(row.rounds[0].reqPerSec! / base.rounds[0].reqPerSec!, 2);
      expect(row.reqPerSec).toBe(row.rounds[0].reqPerSec);
    }
    for (const scenario of SCENARIOS) {
      expect(report!.results.find((r) => r.system === 'http-proxy' && r.scenario === scenario)!.ratioToHttpProxy).toBe(1);
    }
    expect(fs.readFileSync(path.join(outDir, 'latest.md'), 'utf8')).toMatch(/each load row is 1 run/);
  });
});

describe('scripts/bench.js --quick with the opt-in reference forwarders', () => {
  const FORWARDERS = ['forward-node', 'forward-undici'];
  let outDir: string;
  let run: { code: number | null; signal: NodeJS.Signals | null; output: string };
  let report: Report | undefined;

  beforeAll(async () => {
    outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-test-'));
    run = await runBench(outDir, ['--systems', ['http-proxy', ...FORWARDERS].join(','), '--scenarios', 'allowed-1key']);
    const file = path.join(outDir, 'latest.json');
    if (fs.existsSync(file)) report = JSON.parse(fs.readFileSync(file, 'utf8')) as Report;
  }, RUN_TIMEOUT_MS + 15_000);

  afterAll(() => {
    if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
  });

  it.each(FORWARDERS)('%s forwards every request with a 200', (system) => {
    if (run.code !== 0) throw new Error(`bench exited ${run.code ?? run.signal}:\n${run.output.slice(-4000)}`);
    const row = report!.results.find((r) => r.system === system && r.scenario === 'allowed-1key') as Row & { statuses?: Record<string, number> };
    expect({ ok: row.ok, error: row.error }).toEqual({ ok: true, error: undefined });
    expect(row.reqPerSec).toBeGreaterThan(0);
    expect(Object.keys(row.statuses ?? {})).toEqual(['200']);
  });
});

describe('scripts/bench.js --quick --scenarios tls', () => {
  interface TlsRow { system: string; mode: string; ok: boolean; error?: string; reqPerSec?: number; statuses?: Record<string, number> }
  interface TlsReport { tls: { error?: string; rows: TlsRow[]; swap: { ok: boolean; error?: string; swaps: number; reloadsOk: number; requests: number; failed: number; socketErrors: number } } }
  let outDir: string;
  let run: { code: number | null; signal: NodeJS.Signals | null; output: string };
  let report: TlsReport | undefined;

  beforeAll(async () => {
    outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-test-'));
    run = await runBench(outDir, ['--scenarios', 'tls']);
    const file = path.join(outDir, 'latest.json');
    if (fs.existsSync(file)) report = JSON.parse(fs.readFileSync(file, 'utf8')) as TlsReport;
  }, RUN_TIMEOUT_MS + 15_000);

  afterAll(() => {
    if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
  });

  it('tollgate and forward-undici answer 2xx over plain HTTP, HTTPS/1.1, h2 (5 connections and one) and a new TLS connection per request; the hello server over plain HTTP and HTTPS/1.1', () => {
    if (run.code !== 0) throw new Error(`bench exited ${run.code ?? run.signal}:\n${run.output.slice(-4000)}`);
    expect(report?.tls.error).toBeUndefined();
    const rows = report!.tls.rows.map((r) => ({ system: r.system, mode: r.mode, ok: r.ok, error: r.error, codes: Object.keys(r.statuses ?? {}) }));
    const modes = (system: string): string[] => (system === 'hello' ? ['http', 'https'] : ['http', 'https', 'h2', 'h2wide', 'handshake']);
    const expected = ['hello', 'forward-undici', 'tollgate'].flatMap((system) => modes(system).map((mode) => ({
      system, mode, ok: true, error: undefined, codes: [mode.startsWith('h2') ? '2xx' : '200'],
    })));
    expect(rows).toEqual(expected);
  });

  it('a certificate swapped every 250 ms under load: reloads applied, no failed request, no dropped connection', () => {
    const swap = report!.tls.swap;
    expect({ ok: swap.ok, error: swap.error }).toEqual({ ok: true, error: undefined });
    expect(swap.swaps).toBeGreaterThanOrEqual(4);
    expect(swap.reloadsOk).toBeGreaterThanOrEqual(1);
    expect(swap.requests).toBeGreaterThan(0);
    expect({ failed: swap.failed, socketErrors: swap.socketErrors }).toEqual({ failed: 0, socketErrors: 0 });
  });
});
