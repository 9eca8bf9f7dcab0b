import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config/load';

/*
 * SPEC §1: settings and their precedence (defaults < config/default.json < CONFIG_FILE <
 * env < flags), and one clear line for every bad setting. loadConfig is pure given
 * env/argv/baseDir/cwd, so nothing here touches process.env.
 */

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const UPSTREAM = 'http://127.0.0.1:3000';

function tempDir(label: string): string {
  return mkdtempSync(path.join(tmpdir(), `tollgate-config-${label}-`));
}

function writeJson(dir: string, name: string, doc: unknown): string {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

function load(env: Record<string, string>, argv: string[] = [], opts: { baseDir?: string; cwd?: string } = {}): Config {
  return loadConfig({ env, argv, baseDir: opts.baseDir ?? REPO_ROOT, cwd: opts.cwd ?? tempDir('cwd') });
}

/** The error loadConfig throws; fails the test when it does not throw. */
function loadError(env: Record<string, string>, argv: string[] = [], cwd?: string): { code: unknown; message: string } {
  try {
    load(env, argv, cwd === undefined ? {} : { cwd });
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    return { code: e.code, message: String(e.message) };
  }
  throw new Error(`expected ${JSON.stringify(env)} ${argv.join(' ')} to be rejected`);
}

describe('defaults', () => {
  test('only UPSTREAM_URL set: every other setting has its documented default', () => {
    const config = load({ UPSTREAM_URL: UPSTREAM });
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      adminPort: 9090,
      adminHost: '127.0.0.1',
      adminToken: null,
      upstreamUrl: UPSTREAM,
      upstreamTimeoutMs: 30000,
      store: 'memory',
      redisUrl: null,
      redisClusterNodes: null,
      redisSentinels: null,
      redisKeyPrefix: 'tollgate:',
      storeTimeoutMs: 50,
      storeFailureMode: 'local',
      tiersFile: 'config/tiers.json',
      keysFile: 'config/keys.json',
      apiKeyHeader: 'x-api-key',
      trustProxy: null,
      rateLimitHeaders: 'gateway',
      rateLimitDraftHeaders: false,
      invalidKeyLimit: 10,
      invalidKeyWindowS: 60,
      ipBlockS: 300,
      shutdownTimeoutMs: 10000,
      workers: 1,
      logLevel: 'info',
    });
  });

  test('the result is frozen', () => {
    const config = load({ UPSTREAM_URL: UPSTREAM });
    expect(Object.isFrozen(config)).toBe(true);
  });

  test.each([
    ['REDIS_URL', 'redis://127.0.0.1:6379'],
    ['REDIS_CLUSTER_NODES', '127.0.0.1:7000,127.0.0.1:7001'],
  ])('STORE defaults to redis when %s is set', (name, value) => {
    expect(load({ UPSTREAM_URL: UPSTREAM, [name]: value }).store).toBe('redis');
  });

  test('STORE defaults to redis with REDIS_SENTINELS and REDIS_SENTINEL_NAME', () => {
    expect(load({ UPSTREAM_URL: UPSTREAM, REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'mymaster' }).store).toBe('redis');
  });

  test('env values are converted: numbers, booleans, and the header name lower-cased', () => {
    const config = load({
      UPSTREAM_URL: UPSTREAM,
      PORT: '9001',
      RATE_LIMIT_DRAFT_HEADERS: 'true',
      INVALID_KEY_LIMIT: '3',
      API_KEY_HEADER: 'X-Api-Token',
      TRUST_PROXY: '10.0.0.0/8,::1',
      WORKERS: '1',
    });
    expect(config).toMatchObject({
      port: 9001,
      rateLimitDraftHeaders: true,
      invalidKeyLimit: 3,
      apiKeyHeader: 'x-api-token',
      trustProxy: '10.0.0.0/8,::1',
      workers: 1,
    });
  });
});

describe('precedence: defaults < config/default.json < CONFIG_FILE < env < flags', () => {
  // A package root of our own, so config/default.json can hold values (the shipped one is {}).
  const baseDir = tempDir('base');
  writeJson(baseDir, 'config/default.json', {
    port: 7001,
    upstreamUrl: 'http://default-json:1',
    logLevel: 'warn',
    ipBlockS: 11,
    invalidKeyLimit: 12,
  });
  const cwd = tempDir('cwd');
  writeJson(cwd, 'site.json', { port: 7002, upstreamUrl: 'http://config-file:2', ipBlockS: 21 });

  test('config/default.json beats the built-in defaults', () => {
    expect(load({}, [], { baseDir, cwd })).toMatchObject({ port: 7001, upstreamUrl: 'http://default-json:1', logLevel: 'warn', ipBlockS: 11 });
  });

  test('CONFIG_FILE (relative to the working directory) beats config/default.json', () => {
    const config = load({ CONFIG_FILE: 'site.json' }, [], { baseDir, cwd });
    expect(config).toMatchObject({ port: 7002, upstreamUrl: 'http://config-file:2', ipBlockS: 21 });
    // What CONFIG_FILE does not set still comes from config/default.json.
    expect(config).toMatchObject({ logLevel: 'warn', invalidKeyLimit: 12 });
  });

  test('CONFIG_FILE may be an absolute path', () => {
    expect(load({ CONFIG_FILE: path.join(cwd, 'site.json') }, [], { baseDir, cwd: tempDir('elsewhere') }).port).toBe(7002);
  });

  test('env beats CONFIG_FILE', () => {
    const config = load({ CONFIG_FILE: 'site.json', PORT: '7003', UPSTREAM_URL: 'http://env:3' }, [], { baseDir, cwd });
    expect(config).toMatchObject({ port: 7003, upstreamUrl: 'http://env:3', ipBlockS: 21, logLevel: 'warn' });
  });

  test('flags beat env: --port 9001 and --upstream-url http://…', () => {
    const config = load(
      { CONFIG_FILE: 'site.json', PORT: '7003', UPSTREAM_URL: 'http://env:3' },
      ['--port', '9001', '--upstream-url', 'http://flag:4'],
      { baseDir, cwd },
    );
    expect(config).toMatchObject({ port: 9001, upstreamUrl: 'http://flag:4', ipBlockS: 21, logLevel: 'warn' });
  });

  test('flags also work as --name=value', () => {
    expect(load({ UPSTREAM_URL: UPSTREAM }, ['--port=9002', '--log-level=debug']).port).toBe(9002);
    expect(load({ UPSTREAM_URL: UPSTREAM }, ['--log-level=debug']).logLevel).toBe('debug');
  });

  test('--config-file names the config file like CONFIG_FILE', () => {
    expect(load({}, ['--config-file', 'site.json'], { baseDir, cwd }).port).toBe(7002);
  });
});

describe('a bad setting: GatewayError invalid_config with one line naming the setting, the bad value and what is allowed', () => {
  const cwd = tempDir('bad');
  writeJson(cwd, 'extra-key.json', { upstreamUrl: UPSTREAM, rateLimitHeadres: 'none' });

  interface BadCase {
    label: string;
    env: Record<string, string>;
    argv?: string[];
    /** Every one of these must appear in the message. */
    names: Array<string | RegExp>;
    /** What is allowed, in the message. */
    allowed: RegExp;
  }

  const cases: BadCase[] = [
    { label: 'PORT=abc', env: { UPSTREAM_URL: UPSTREAM, PORT: 'abc' }, names: ['PORT', 'abc'], allowed: /port number 0-65535/ },
    { label: 'no UPSTREAM_URL', env: {}, names: ['UPSTREAM_URL'], allowed: /required.*http:\/\// },
    { label: 'STORE=foo', env: { UPSTREAM_URL: UPSTREAM, STORE: 'foo' }, names: ['STORE', 'foo'], allowed: /memory.*redis/ },
    {
      label: 'STORE=redis without REDIS_URL',
      env: { UPSTREAM_URL: UPSTREAM, STORE: 'redis' },
      names: ['STORE', 'redis'],
      allowed: /REDIS_URL/,
    },
    {
      label: 'UPSTREAM_URL=ftp://x',
      env: { UPSTREAM_URL: 'ftp://x' },
      names: ['UPSTREAM_URL', 'ftp://x'],
      allowed: /http:\/\/ or https:\/\//,
    },
    {
      label: 'RATE_LIMIT_HEADERS=bogus',
      env: { UPSTREAM_URL: UPSTREAM, RATE_LIMIT_HEADERS: 'bogus' },
      names: ['RATE_LIMIT_HEADERS', 'bogus'],
      allowed: /gateway.*upstream.*none/,
    },
    {
      label: 'an unknown key in CONFIG_FILE',
      env: { CONFIG_FILE: 'extra-key.json' },
      // Which file: there can be two (config/default.json and CONFIG_FILE).
      names: ['rateLimitHeadres', /CONFIG_FILE|extra-key\.json/],
      allowed: /camelCase/,
    },
    {
      label: 'CONFIG_FILE that does not exist',
      env: { UPSTREAM_URL: UPSTREAM, CONFIG_FILE: 'no-such-config.json' },
      names: ['CONFIG_FILE', 'no-such-config.json'],
      allowed: /no such file/,
    },
    {
      label: 'an unknown flag',
      env: { UPSTREAM_URL: UPSTREAM },
      argv: ['--upstream', 'http://x'],
      names: ['--upstream'],
      allowed: /kebab case.*--upstream-url/,
    },
    {
      label: 'ADMIN_PORT equal to PORT',
      env: { UPSTREAM_URL: UPSTREAM, PORT: '7000', ADMIN_PORT: '7000' },
      names: ['ADMIN_PORT', '7000'],
      allowed: /differ from PORT/,
    },
    {
      label: 'ADMIN_HOST=0.0.0.0 without ADMIN_TOKEN',
      env: { UPSTREAM_URL: UPSTREAM, ADMIN_HOST: '0.0.0.0' },
      names: ['ADMIN_TOKEN', 'ADMIN_HOST', '0.0.0.0'],
      allowed: /loopback/,
    },
    {
      label: 'WORKERS=2 with the memory store',
      env: { UPSTREAM_URL: UPSTREAM, WORKERS: '2' },
      names: ['WORKERS', '2'],
      allowed: /redis/,
    },
    {
      label: 'TRUST_PROXY=not-a-cidr',
      env: { UPSTREAM_URL: UPSTREAM, TRUST_PROXY: 'not-a-cidr' },
      names: ['TRUST_PROXY', 'not-a-cidr'],
      allowed: /CIDR/,
    },
    {
      label: 'STORE_FAILURE_MODE=maybe',
      env: { UPSTREAM_URL: UPSTREAM, STORE_FAILURE_MODE: 'maybe' },
      names: ['STORE_FAILURE_MODE', 'maybe'],
      allowed: /local.*open.*closed/,
    },
    // A falsy bad value must be named like any other.
    {
      label: 'UPSTREAM_TIMEOUT_MS=0',
      env: { UPSTREAM_URL: UPSTREAM, UPSTREAM_TIMEOUT_MS: '0' },
      names: ['UPSTREAM_TIMEOUT_MS', /\b0\b/],
      allowed: /at least 1/,
    },
    {
      label: 'WORKERS=0',
      env: { UPSTREAM_URL: UPSTREAM, WORKERS: '0' },
      names: ['WORKERS', /\b0\b/],
      allowed: /1-256/,
    },
  ];

  test.each(cases.map((c) => [c.label, c] as const))('%s', (_label, c) => {
    const error = loadError(c.env, c.argv ?? [], cwd);
    expect(error.code).toBe('invalid_config');
    expect(error.message.split('\n')).toHaveLength(1);
    for (const name of c.names) {
      if (typeof name === 'string') expect(error.message).toContain(name);
      else expect(error.message).toMatch(name);
    }
    expect(error.message).toMatch(c.allowed);
  });

  test('the bad value is quoted as given, not coerced', () => {
    expect(loadError({ UPSTREAM_URL: UPSTREAM, PORT: '80a' }).message).toContain('"80a"');
    expect(loadError({ UPSTREAM_URL: UPSTREAM, PORT: '70000' }).message).toContain('70000');
  });
});
