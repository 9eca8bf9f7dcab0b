// The operator scripts in scripts/, run as the CLI commands docs/deploy.md shows:
// the echo upstream, seed-keys against a stand-in admin API, the load test against a
// stand-in gateway, and the local Redis Cluster with real redis-server processes.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { MAX_ECHO_BYTES, startEchoUpstream } from '../../scripts/echo-upstream';
import type { EchoResponse } from '../../scripts/echo-upstream';

const execFileAsync = promisify(execFile);
const SCRIPTS = resolve(__dirname, '..', '..', 'scripts');

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a script to completion (killed after timeoutMs). */
function runScript(script: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [join(SCRIPTS, script), ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

/** Start a long-running script and resolve once stdout has a line matching `ready`. */
function startScript(script: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs = 30_000): Promise<{ child: ChildProcess; match: RegExpMatchArray; output: () => string }> {
  return new Promise((resolveStart, reject) => {
    const child = spawn(process.execPath, [join(SCRIPTS, script), ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} not ready after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = ready.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolveStart({ child, match, output: () => stdout + stderr });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before it was ready\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
}

function post(port: number, path: string, body: string | Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolvePost, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolvePost({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolveClose) => {
    server.closeAllConnections();
    server.close(() => resolveClose());
  });
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('scripts/echo-upstream.js', () => {
  it('echoes method, path, query, headers and at most 64 KiB of the body', async () => {
    const server = await startEchoUpstream({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = server.address() as AddressInfo;
      const small = await post(port, '/a/b?x=1&x=2&y=3', 'hello');
      expect(small.status).toBe(200);
      const echo = JSON.parse(small.body) as EchoResponse;
      expect(echo).toMatchObject({ method: 'POST', path: '/a/b', query: { x: ['1', '2'], y: '3' }, body: 'hello', bodyBytes: 5, bodyTruncated: false });
      expect(echo.headers.host).toBe(`127.0.0.1:${port}`);

      const big = JSON.parse((await post(port, '/big', Buffer.alloc(MAX_ECHO_BYTES * 3, 'z'))).body) as EchoResponse;
      expect(MAX_ECHO_BYTES).toBe(64 * 1024);
      expect(big.body).toHaveLength(MAX_ECHO_BYTES);
      expect(big.bodyBytes).toBe(MAX_ECHO_BYTES * 3);
      expect(big.bodyTruncated).toBe(true);
    } finally {
      await closeServer(server);
    }
  });

  it('runs from the command line, logs one JSON line, and exits 0 on SIGTERM', async () => {
    const { child, match } = await startScript('echo-upstream.js', [], { PORT: '0', HOST: '127.0.0.1' }, /^(\{.*\})\n/);
    const line = JSON.parse(match[1]) as { msg: string; port: number; level: string };
    expect(line).toMatchObject({ level: 'info', msg: 'echo upstream listening' });
    const reply = await post(line.port, '/x', '');
    expect(reply.status).toBe(200);
    child.kill('SIGTERM');
    expect(await exitOf(child)).toEqual({ code: 0, signal: null });
  });

  it('exits 1 with a log line when the port is taken', async () => {
    const blocker = await startEchoUpstream({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = blocker.address() as AddressInfo;
      const run = await runScript('echo-upstream.js', [], { PORT: String(port), HOST: '127.0.0.1' });
      expect(run.code).toBe(1);
      expect(run.stdout).toContain('EADDRINUSE');
    } finally {
      await closeServer(blocker);
    }
  });
});

describe('scripts/seed-keys.js', () => {
  interface Created {
    tier: string;
    name: string;
    key?: string;
  }
  let server: http.Server;
  let adminUrl: string;
  const received: { auth: string | undefined; body: Created }[] = [];
  let failFrom = Infinity;

  beforeAll(async () => {
    // Stand-in for the admin API's POST /admin/keys (SPEC §4).
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.method !== 'POST' || req.url !== '/admin/keys') {
          res.writeHead(404).end(JSON.stringify({ error: 'not_found', message: 'no such route' }));
          return;
        }
        if (req.headers.authorization !== 'Bearer s3cret') {
          res.writeHead(401).end(JSON.stringify({ error: 'unauthorized', message: 'bad token' }));
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Created;
        received.push({ auth: req.headers.authorization, body });
        if (received.length >= failFrom) {
          res.writeHead(400).end(JSON.stringify({ error: 'invalid_request', message: 'unknown tier' }));
          return;
        }
        const n = received.length;
        res.writeHead(201).end(JSON.stringify({
          id: `key_${n}`, key: body.key ?? `generated_key_${n}`, tier: body.tier, name: body.name, disabled: false, createdAt: new Date(0).toISOString(),
        }));
      });
    });
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', () => resolveListen()));
    adminUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => closeServer(server));
  beforeEach(() => {
    received.length = 0;
    failFrom = Infinity;
  });

  it('creates --count keys of a tier and prints them as CSV', async () => {
    const run = await runScript('seed-keys.js', ['--admin', adminUrl, '--token', 's3cret', '--count', '3', '--tier', 'free']);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toBe('id,key,tier,name\nkey_1,generated_key_1,free,seed-1\nkey_2,generated_key_2,free,seed-2\nkey_3,generated_key_3,free,seed-3\n');
    expect(received.map((r) => r.body)).toEqual([1, 2, 3].map((n) => ({ tier: 'free', name: `seed-${n}` })));
  });

  it('creates one key per CSV row, importing given keys, token from $ADMIN_TOKEN', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-seed-'));
    tempDirs.push(dir);
    const csv = join(dir, 'keys.csv');
    writeFileSync(csv, 'tier,name,key\r\npro,"Acme, Inc.",acme_imported_key_01\r\nenterprise,Globex\r\n');
    const run = await runScript('seed-keys.js', ['--admin', adminUrl, '--csv', csv], { ADMIN_TOKEN: 's3cret' });
    expect(run).toMatchObject({ code: 0 });
    expect(received.map((r) => r.body)).toEqual([
      { tier: 'pro', name: 'Acme, Inc.', key: 'acme_imported_key_01' },
      { tier: 'enterprise', name: 'Globex' },
    ]);
    expect(run.stdout).toBe('id,key,tier,name\nkey_1,acme_imported_key_01,pro,"Acme, Inc."\nkey_2,generated_key_2,enterprise,Globex\n');
  });

  it('takes identity, expiresAt and limits columns (SPEC §9), positional or named by a header in any order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-seed-'));
    tempDirs.push(dir);
    const positional = join(dir, 'positional.csv');
    writeFileSync(positional, 'pro,Acme,,acme,2027-06-30T00:00:00Z,"{""quota"":{""limit"":1000,""period"":""month""}}"\nfree,Plain\n');
    const named = join(dir, 'named.csv');
    writeFileSync(named, 'Name,Tier,Identity,Limits\nInitech,pro,initech:eu,"{""windows"":[{""limit"":5,""windowSeconds"":1}]}"\n');
    expect(await runScript('seed-keys.js', ['--admin', adminUrl, '--csv', positional], { ADMIN_TOKEN: 's3cret' })).toMatchObject({ code: 0 });
    expect(await runScript('seed-keys.js', ['--admin', adminUrl, '--csv', named], { ADMIN_TOKEN: 's3cret' })).toMatchObject({ code: 0 });
    expect(received.map((r) => r.body)).toEqual([
      { tier: 'pro', name: 'Acme', identity: 'acme', expiresAt: '2027-06-30T00:00:00Z', limits: { quota: { limit: 1000, period: 'month' } } },
      { tier: 'free', name: 'Plain' },
      { tier: 'pro', name: 'Initech', identity: 'initech:eu', limits: { windows: [{ limit: 5, windowSeconds: 1 }] } },
    ]);

    const bad = join(dir, 'bad.csv');
    for (const [text, reason] of [
      ['free,A,,has space\n', /identity/],
      ['free,A,,,tomorrow\n', /expiresAt/],
      ['free,A,,,,{not json\n', /limits is not JSON/],
      ['tier,name,colour\nfree,A,red\n', /unknown column\(s\) colour/],
    ] as const) {
      writeFileSync(bad, text);
      const run = await runScript('seed-keys.js', ['--admin', adminUrl, '--csv', bad], { ADMIN_TOKEN: 's3cret' });
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(reason);
    }
    expect(received).toHaveLength(3);
  });

  it('exits 1 naming the failure, after printing the keys it did create', async () => {
    failFrom = 2;
    const run = await runScript('seed-keys.js', ['--admin', adminUrl, '--token', 's3cret', '--count', '3', '--tier', 'free']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('id,key,tier,name\nkey_1,generated_key_1,free,seed-1\n');
    expect(run.stderr).toMatch(/key 2 of 3 .*400.*invalid_request: unknown tier.*1 key\(s\) created/);
  });

  it('explains a bad token, an unreachable admin port and bad arguments', async () => {
    const unauthorized = await runScript('seed-keys.js', ['--admin', adminUrl, '--token', 'wrong', '--count', '1', '--tier', 'free']);
    expect(unauthorized.code).toBe(1);
    expect(unauthorized.stderr).toMatch(/401.*--token/);

    const unreachable = await runScript('seed-keys.js', ['--admin', `http://127.0.0.1:${await freePort()}`, '--count', '1', '--tier', 'free']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/cannot reach .*ECONNREFUSED/);

    const usage = await runScript('seed-keys.js', ['--admin', adminUrl, '--count', '2']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--count needs --tier/);
    expect(received).toHaveLength(0);
  });
});

describe('scripts/loadtest.js', () => {
  it('tallies status codes and latency per tier, and stops by itself', async () => {
    const seen = new Map<string, number>();
    // Stand-in gateway: the free key is always limited, the others allowed.
    const server = http.createServer((req, res) => {
      const key = String(req.headers['x-api-key']);
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (key === 'k_free_123') {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":"rate_limited"}');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      }
    });
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', () => resolveListen()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const run = await runScript('loadtest.js', ['--url', url, '--duration', '1', '--connections', '4', '--keys', 'free:k_free_123,pro:k_pro_456', '--json', '--no-progress']);
      expect(run.code).toBe(0);
      const summary = JSON.parse(run.stdout) as { tiers: Record<string, { requests: number; statusCodes: Record<string, number>; p50: number; p99: number }> };
      const { free, pro } = summary.tiers;
      expect(free.requests).toBeGreaterThan(0);
      expect(free.statusCodes).toEqual({ 429: free.requests });
      expect(pro.statusCodes).toEqual({ 200: pro.requests });
      expect(free.p50).toBeGreaterThan(0);
      expect(pro.p99).toBeGreaterThanOrEqual(pro.p50);
      // Every request carried one of the keys, and the server saw what was tallied.
      expect([...seen.keys()].sort()).toEqual(['k_free_123', 'k_pro_456']);
      expect(seen.get('k_free_123')).toBeGreaterThanOrEqual(free.requests);
    } finally {
      await closeServer(server);
    }
  });

  it('prints a table per tier and fails when nothing answers', async () => {
    const run = await runScript('loadtest.js', ['--url', `http://127.0.0.1:${await freePort()}`, '--duration', '1', '--connections', '3', '--no-progress']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^tier\s+requests\s+p50\s+p99$/m);
    for (const tier of ['free', 'pro', 'enterprise']) expect(run.stdout).toMatch(new RegExp(`^${tier}\\s+0\\s`, 'm'));
    expect(run.stderr).toMatch(/no responses at all/);
  });
});

const haveRedis = existsSync('/usr/bin/redis-server') && existsSync('/usr/bin/redis-cli');

(haveRedis ? describe : describe.skip)('scripts/cluster.js', () => {
  it('starts a 3-master cluster on the given ports, prints REDIS_CLUSTER_NODES, stops on Ctrl-C', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const busPorts = [await freePort(), await freePort(), await freePort()];
    const { child, match } = await startScript(
      'cluster.js',
      ['--ports', ports.join(','), '--bus-ports', busPorts.join(',')],
      {},
      /^REDIS_CLUSTER_NODES=(\S+)$/m,
    );
    try {
      expect(match[1]).toBe(ports.map((port) => `127.0.0.1:${port}`).join(','));
      const info = await execFileAsync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info']);
      expect(info.stdout).toMatch(/cluster_state:ok/);
      expect(info.stdout).toMatch(/cluster_size:3/);
      // -c follows MOVED redirects: keys land on whichever master owns their slot.
      for (const key of ['a', 'b', 'c', '{user1}x']) {
        await execFileAsync('redis-cli', ['-c', '-p', String(ports[1]), 'set', key, 'v']);
        expect((await execFileAsync('redis-cli', ['-c', '-p', String(ports[2]), 'get', key])).stdout.trim()).toBe('v');
      }
    } finally {
      child.kill('SIGINT');
    }
    expect(await exitOf(child)).toEqual({ code: 0, signal: null });
    await expect(execFileAsync('redis-cli', ['-p', String(ports[0]), 'ping'])).rejects.toBeDefined();
  });

  it('refuses a port that is in use', async () => {
    const blocker = await startEchoUpstream({ port: 0, host: '127.0.0.1' });
    try {
      const taken = (blocker.address() as AddressInfo).port;
      const run = await runScript('cluster.js', ['--ports', `${taken},${await freePort()},${await freePort()}`, '--bus-ports', `${await freePort()},${await freePort()},${await freePort()}`]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`127.0.0.1:${taken} is in use`);
    } finally {
      await closeServer(blocker);
    }
  });
});
