import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../support/gateway';
import { runToExit, spawnTracked, waitFor, type RunResult } from '../support/processes';

/*
 * scripts/test-tools.js, `npm test`'s pretest step, run for real with a PATH of one temp
 * directory: stand-ins for the tools it should find, and a stand-in apt-get that records its
 * arguments (and, on install, puts redis-server in place and starts a "service" that writes
 * its pidfile, as Debian's postinst does). redis-server is what is missing.
 */

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'test-tools.js');
const PRESENT = ['redis-cli', 'nginx', 'promtool', 'openssl', 'h2load'];
const NOBODY = 65534;

let tmp: string;
let caseNo = 0;

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'tollgate-test-tools-'));
  chmodSync(tmp, 0o755);
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function which(command: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, command);
    if (dir !== '' && existsSync(file)) return realpathSync(file);
  }
  throw new Error(`${command} is not on this PATH; the test needs it to build its own`);
}

function writeExecutable(file: string, text: string): void {
  writeFileSync(file, text);
  chmodSync(file, 0o755);
}

interface Sandbox {
  /** The PATH: one directory. */
  bin: string;
  /** Where the stand-in apt-get writes a line per call. */
  calls: string;
  /** TOLLGATE_RUN_DIR: where the pidfiles go. */
  run: string;
  aptCalls(): string[];
  /** The pid the stand-in install wrote to redis/redis-server.pid, if any. */
  servicePid(): number | undefined;
}

/** `tools`: the commands present (as stand-ins that exit 0). `apt`: whether apt-get is there, and what its install does. */
function sandbox(tools: readonly string[], apt: 'installs' | 'installs, no service' | 'fails' | 'absent' = 'installs'): Sandbox {
  const dir = path.join(tmp, `case-${++caseNo}`);
  const bin = path.join(dir, 'bin');
  const run = path.join(dir, 'run');
  mkdirSync(bin, { recursive: true, mode: 0o755 });
  mkdirSync(path.join(run, 'redis'), { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  const calls = path.join(dir, 'apt-get.calls');
  // World-writable, so a call made as nobody is recorded too rather than failing unseen.
  writeFileSync(calls, '');
  chmodSync(calls, 0o666);
  symlinkSync(process.execPath, path.join(bin, 'node'));
  for (const tool of tools) writeExecutable(path.join(bin, tool), '#!/bin/sh\nexit 0\n');
  if (apt !== 'absent') {
    // The "service": node under the name redis-server, so its process name is redis-server.
    const link = `  '${which('ln')}' -s '${process.execPath}' '${bin}/redis-server'`;
    const service = [
      `  '${bin}/redis-server' -e 'setTimeout(() => {}, 120000)' </dev/null >/dev/null 2>&1 &`,
      `  echo $! > '${run}/redis/redis-server.pid'`,
    ];
    const install =
      apt === 'installs' ? [link, ...service]
      : apt === 'installs, no service' ? [link]
      : ['  echo "E: stand-in failure" >&2', '  exit 100'];
    writeExecutable(
      path.join(bin, 'apt-get'),
      ['#!/bin/sh', `echo "$*" >> '${calls}'`, 'if [ "$1" = install ]; then', ...install, 'fi', 'exit 0', ''].join('\n'),
    );
  }
  return {
    bin,
    calls,
    run,
    aptCalls: () => readFileSync(calls, 'utf8').split('\n').filter((line) => line !== ''),
    servicePid() {
      const file = path.join(run, 'redis', 'redis-server.pid');
      return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : undefined;
    },
  };
}

/** Alive and not a zombie (whoever inherited the stand-in service may not reap it). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

function killIfRunning(pid: number | undefined): void {
  if (pid === undefined || !running(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

function envFor(box: Sandbox, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: box.bin, HOME: os.tmpdir(), TOLLGATE_RUN_DIR: box.run, ...extra };
}

const isRoot = process.getuid?.() === 0;

/** As root: for real when the tests run as root, else through the documented TOLLGATE_TEST_UID. */
function runAsRoot(box: Sandbox, extra: Record<string, string> = {}): Promise<RunResult> {
  const env = envFor(box, isRoot ? extra : { ...extra, TOLLGATE_TEST_UID: '0' });
  return runToExit('test-tools', process.execPath, [SCRIPT], { env, timeoutMs: 20000 });
}

/** As a user who is not root: for real (nobody, through setpriv) when the tests run as root. */
function runAsUser(box: Sandbox): Promise<RunResult> {
  const env = envFor(box);
  if (!isRoot) return runToExit('test-tools', process.execPath, [SCRIPT], { env, timeoutMs: 20000 });
  const args = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, SCRIPT];
  return runToExit('test-tools as nobody', which('setpriv'), args, { env, timeoutMs: 20000 });
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

const INSTALL_REDIS = 'apt-get update && apt-get install -y --no-install-recommends redis-server';

test('everything present: silent, exit 0, apt-get never called', async () => {
  const box = sandbox(['redis-server', ...PRESENT]);
  const r = await runAsRoot(box);
  expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
  expect(box.aptCalls()).toEqual([]);
});

test('as root with apt-get: installs redis-server in one apt-get update and one install, says so in one line, stops the service it started', async () => {
  const box = sandbox(PRESENT);
  let pid: number | undefined;
  try {
    const r = await runAsRoot(box);
    pid = box.servicePid();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(box.aptCalls()).toEqual(['update -qq', 'install -y -qq --no-install-recommends redis-server']);
    expect(lines(r.stdout)).toEqual([
      'test-tools: the tests need redis-server; installing as root: apt-get install -y --no-install-recommends redis-server (TOLLGATE_NO_INSTALL=1 to stop instead)',
    ]);
    // The pid from the pidfile the install wrote is stopped (SIGTERM; the script waits for it).
    expect(pid).toEqual(expect.any(Number));
    await waitFor('the stand-in service to be gone', async () => !running(pid ?? 0), 5000);
  } finally {
    killIfRunning(pid);
  }
});

test('as root, a redis-server whose pidfile was there before the install is left alone', async () => {
  const box = sandbox(PRESENT, 'installs, no service');
  // Named redis-server like the real service, and not on the sandbox's PATH.
  const elsewhere = path.join(box.run, 'elsewhere');
  mkdirSync(elsewhere);
  symlinkSync(process.execPath, path.join(elsewhere, 'redis-server'));
  const bystander = await spawnTracked('bystander redis-server', path.join(elsewhere, 'redis-server'), ['-e', 'setTimeout(() => {}, 120000)']);
  try {
    writeFileSync(path.join(box.run, 'redis', 'redis-server.pid'), `${bystander.pid}\n`);
    const r = await runAsRoot(box);
    expect(r.code).toBe(0);
    expect(box.aptCalls()).toEqual(['update -qq', 'install -y -qq --no-install-recommends redis-server']);
    expect(bystander.alive()).toBe(true);
  } finally {
    await bystander.stop('SIGKILL');
  }
});

test('as root, apt-get install failing: its output, then one line, exit 2', async () => {
  const box = sandbox(PRESENT, 'fails');
  const r = await runAsRoot(box);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('E: stand-in failure');
  expect(lines(r.stderr).at(-1)).toBe(`test-tools: apt-get install failed (exit code 100); install by hand with: ${INSTALL_REDIS}`);
});

test('TOLLGATE_NO_INSTALL=1 as root: exit 2 with one line naming what is missing and the command, apt-get never called', async () => {
  const box = sandbox(PRESENT);
  const r = await runAsRoot(box, { TOLLGATE_NO_INSTALL: '1' });
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(lines(r.stderr)).toEqual([
    `test-tools: the tests need redis-server, not found on PATH (TOLLGATE_NO_INSTALL=1, so not installing); install with: ${INSTALL_REDIS}`,
  ]);
  expect(box.aptCalls()).toEqual([]);
});

test('not root: exit 2 with one line and the sudo command, apt-get never called; several tools give their packages', async () => {
  const box = sandbox(['nginx', 'promtool', 'openssl']);
  const r = await runAsUser(box);
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(lines(r.stderr)).toEqual([
    'test-tools: the tests need redis-server, redis-cli (redis-tools), h2load (nghttp2-client), not found on PATH (not root, so not installing); ' +
      'install with: sudo apt-get update && sudo apt-get install -y --no-install-recommends redis-server redis-tools nghttp2-client',
  ]);
  expect(box.aptCalls()).toEqual([]);
});

test('no apt-get: exit 2 with one line naming the Debian packages', async () => {
  const box = sandbox(PRESENT, 'absent');
  const r = await runAsRoot(box);
  expect(r.code).toBe(2);
  expect(lines(r.stderr)).toEqual([
    `test-tools: the tests need redis-server, not found on PATH; install them with your package manager (Debian: ${INSTALL_REDIS})`,
  ]);
});

test('`npm test` stops at its pretest step: the one line, exit 2, no build and no Jest', async () => {
  // A copy of package.json and the script, so a broken pretest cannot start the real suite.
  const box = sandbox(PRESENT);
  const project = path.join(tmp, `project-${++caseNo}`);
  mkdirSync(path.join(project, 'scripts'), { recursive: true });
  copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(project, 'package.json'));
  copyFileSync(SCRIPT, path.join(project, 'scripts', 'test-tools.js'));
  symlinkSync(which('npm'), path.join(box.bin, 'npm'));
  symlinkSync(which('sh'), path.join(box.bin, 'sh'));
  const r = await runToExit('npm test', path.join(box.bin, 'npm'), ['test'], {
    cwd: project,
    env: { ...envFor(box, { TOLLGATE_NO_INSTALL: '1' }), npm_config_update_notifier: 'false' },
    timeoutMs: 30000,
  });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`test-tools: the tests need redis-server, not found on PATH (TOLLGATE_NO_INSTALL=1, so not installing); install with: ${INSTALL_REDIS}\n`);
  const output = r.stdout + r.stderr;
  expect(output).toContain('> node scripts/test-tools.js');
  expect(output).not.toContain('tsc -p');
  expect(output).not.toMatch(/jest|Test Suites/i);
});
