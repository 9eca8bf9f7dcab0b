import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './gateway';
import { spawnTracked } from './processes';

/*
 * When redis-server cannot start, the suite fails with the reason and Jest exits on its own:
 * a real Jest runs test/fixtures/redis-cannot-start.fixture.ts (the e2e suites' set-up) with
 * a PATH whose redis-server is missing, or is a stand-in that fails at once.
 */

const JEST_BIN = path.join(REPO_ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
const FIXTURE = 'test/fixtures/redis-cannot-start.fixture.ts';
// Jest's start-up and ts-jest's compile on a busy 2-core machine; the hang this guards
// against never ends, so the bound only needs to be finite.
const RUN_TIMEOUT_MS = 40000;
// From Jest's summary to its exit. Jest itself warns after 1 s that something keeps it alive.
const EXIT_AFTER_SUMMARY_MS = 5000;

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'tollgate-harness-exit-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** A one-directory PATH holding node and, when given, a redis-server script. */
function binDir(name: string, redisServer?: string): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir);
  symlinkSync(process.execPath, path.join(dir, 'node'));
  if (redisServer !== undefined) {
    writeFileSync(path.join(dir, 'redis-server'), redisServer);
    chmodSync(path.join(dir, 'redis-server'), 0o755);
  }
  return dir;
}

interface JestRun {
  code: number | null;
  output: string;
  /** From the "Ran all test suites" line to the process's exit. */
  exitAfterSummaryMs: number;
}

async function runFixture(pathDir: string): Promise<JestRun> {
  const child = await spawnTracked('jest (fixture)', process.execPath, [JEST_BIN, '--ci', '--runInBand', '--testMatch', `**/${FIXTURE}`], {
    cwd: REPO_ROOT,
    env: { PATH: pathDir, HOME: os.homedir() },
  });
  let summaryAt: number | undefined;
  const watch = setInterval(() => {
    if (summaryAt === undefined && /^Ran all test suites/m.test(child.output())) summaryAt = Date.now();
  }, 20);
  const killer = setTimeout(() => child.signal('SIGKILL'), RUN_TIMEOUT_MS);
  try {
    const info = await child.exited;
    const exitedAt = Date.now();
    await child.drained();
    if (info.signal !== null) throw new Error(`jest did not exit within ${RUN_TIMEOUT_MS} ms:\n${child.output()}`);
    if (summaryAt === undefined) throw new Error(`jest exited without its summary:\n${child.output()}`);
    return { code: info.code, output: child.output(), exitAfterSummaryMs: exitedAt - summaryAt };
  } finally {
    clearInterval(watch);
    clearTimeout(killer);
  }
}

test('redis-server missing from PATH: the suite fails with spawn ENOENT and Jest exits by itself', async () => {
  const run = await runFixture(binDir('missing'));
  expect(run.code).toBe(1);
  expect(run.output).toContain('could not start redis-server');
  expect(run.output).toContain('spawn redis-server ENOENT');
  expect(run.output).toMatch(/Tests: +1 failed, 1 total/);
  expect(run.output).not.toContain('did not exit one second after');
  expect(run.exitAfterSummaryMs).toBeLessThan(EXIT_AFTER_SUMMARY_MS);
});

test('redis-server exits at once: the suite fails with its output and Jest exits by itself', async () => {
  const stub = '#!/bin/sh\necho "stand-in redis-server: cannot start" >&2\nexit 1\n';
  const run = await runFixture(binDir('fails', stub));
  expect(run.code).toBe(1);
  expect(run.output).toMatch(/redis-server :\d+ exited \(code 1\) while waiting for redis-server on port \d+ to answer PING/);
  expect(run.output).toContain('stand-in redis-server: cannot start');
  expect(run.output).toMatch(/Tests: +1 failed, 1 total/);
  expect(run.output).not.toContain('did not exit one second after');
  expect(run.exitAfterSummaryMs).toBeLessThan(EXIT_AFTER_SUMMARY_MS);
});
