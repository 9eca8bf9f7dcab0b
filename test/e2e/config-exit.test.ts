import { existsSync } from 'node:fs';
import path from 'node:path';
import { runToExit } from '../support/processes';

/*
 * SPEC §1: "A bad setting stops startup with exit code 2 and one line naming the setting,
 * the bad value and what is allowed." The real built process (`npm run build` first), with
 * a clean environment: only PATH and HOME plus the one bad setting.
 */

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(REPO_ROOT, 'dist', 'main.js');

function cleanEnv(setting: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME'] as const) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...setting };
}

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} does not exist: run \`npm run build\` first`);
});

test.each([
  ['PORT', 'abc'],
  ['STORE', 'foo'],
  ['UPSTREAM_URL', 'ftp://x'],
])('%s=%s: exit code 2, one line on stderr naming the setting and the value, no stack trace', async (name, value) => {
  const result = await runToExit(`tollgate ${name}=${value}`, process.execPath, [MAIN], {
    cwd: REPO_ROOT,
    env: cleanEnv({ [name]: value }),
    timeoutMs: 15000,
  });
  const context = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
  expect({ code: result.code, signal: result.signal, context }).toEqual({ code: 2, signal: null, context });

  const lines = result.stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  expect(result.stderr.endsWith('\n')).toBe(true);
  expect(lines[0]).toContain(name);
  expect(lines[0]).toContain(value);
  expect(`${result.stdout}${result.stderr}`).not.toMatch(/^ {4}at /m);
});
