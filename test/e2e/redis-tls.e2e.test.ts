import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { burst, countStatuses, httpRequest } from '../support/http';
import { freeClusterPort, freePort } from '../support/ports';
import { runToExit, sleep, spawnTracked, waitFor, waitForAlive, type TrackedChild } from '../support/processes';
import { makeCerts, type Certs } from '../support/certs';
import { startUpstream, type Upstream } from '../support/upstream';
import { createKey, EXACT, get, HOUR_TIERS, writeTiers } from './fixtures';

/*
 * Redis over TLS (SPEC §1: REDIS_URL=rediss://…, REDIS_TLS for Cluster nodes), against real
 * TLS-only redis-servers (`--port 0`, so plain TCP is not even offered) whose certificate is
 * signed by a CA made here with openssl. The gateway trusts that CA only through
 * NODE_EXTRA_CA_CERTS; a gateway without it must refuse the server, not talk to it.
 */

const HOST = '127.0.0.1';
const CLI_TIMEOUT_MS = 5000;
const NODE_READY_TIMEOUT_MS = 10000;
const START_ATTEMPTS = 3;
const CLUSTER_CREATE_TIMEOUT_MS = 30000;
const CLUSTER_OK_TIMEOUT_MS = 20000;
const PASSWORD = 'tls s3cret/pass';

let dir: string;
let certs: Certs;
let upstream: Upstream;
let tiersFile: string;
// Everything this file started, so the last afterAll can stop it even when a beforeAll failed halfway.
const servers: TrackedChild[] = [];
const gateways: GatewayProcess[] = [];

async function run(name: string, command: string, args: string[], timeoutMs = CLI_TIMEOUT_MS): Promise<string> {
  const result = await runToExit(name, command, args, { timeoutMs });
  if (result.code !== 0) throw new Error(`${name} exited with code ${String(result.code)}:\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

/** redis-cli over TLS, trusting our CA; stdout. Bounded: redis-cli --tls hangs on a plain-TCP port. */
function cli(port: number, args: string[], password?: string): Promise<string> {
  const auth = password !== undefined ? ['-a', password, '--no-auth-warning'] : [];
  return run(`redis-cli -p ${port} ${args[0]}`, 'redis-cli', ['--tls', '--cacert', certs.ca, '-h', HOST, '-p', String(port), ...auth, ...args]);
}

interface TlsNode {
  port: number;
  child: TrackedChild;
}

/** A TLS-only redis-server on a port from `pickPort`; resolves once PING over TLS answers PONG. */
async function startTlsRedis(pickPort: () => Promise<number>, extraArgs: string[], password?: string): Promise<TlsNode> {
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await pickPort();
    const data = path.join(dir, `redis-${port}`);
    mkdirSync(data, { recursive: true });
    const child = await spawnTracked(`redis-server tls :${port}`, 'redis-server', [
      '--port', '0',
      '--bind', HOST,
      '--tls-port', String(port),
      '--tls-cert-file', certs.cert,
      '--tls-key-file', certs.key,
      '--tls-ca-cert-file', certs.ca,
      '--tls-auth-clients', 'no',
      '--save', '',
      '--appendonly', 'no',
      '--dir', data,
      ...(password !== undefined ? ['--requirepass', password, '--masterauth', password] : []),
      ...extraArgs,
    ]);
    servers.push(child);
    try {
      await waitForAlive(child, `PONG over TLS from :${port}`, async () => (await cli(port, ['ping'], password)).trim() === 'PONG', NODE_READY_TIMEOUT_MS, 100);
      return { port, child };
    } catch (error) {
      await child.stop('SIGKILL');
      await child.drained(500);
      // Someone else took the port between freePort() and the bind: pick another.
      if (!/Address already in use/.test(child.output())) throw error;
      lastError = error;
    }
  }
  throw lastError;
}

/** Three TLS masters (client, bus and replication links all TLS), all slots assigned, cluster_state:ok everywhere. */
async function startTlsCluster(password?: string): Promise<TlsNode[]> {
  const taken = new Set<number>();
  const nodes = await Promise.all([0, 1, 2].map(() => startTlsRedis(() => freeClusterPort(taken), [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', '2000',
    '--tls-cluster', 'yes',
    '--tls-replication', 'yes',
  ], password)));
  const auth = password !== undefined ? ['-a', password, '--no-auth-warning'] : [];
  await run('redis-cli --tls --cluster create', 'redis-cli', [
    '--tls', '--cacert', certs.ca, ...auth,
    '--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes',
  ], CLUSTER_CREATE_TIMEOUT_MS);
  await waitFor('cluster_state:ok with 3 known nodes on every TLS node', async () => {
    for (const node of nodes) {
      const info = await cli(node.port, ['cluster', 'info'], password);
      if (!info.includes('cluster_state:ok') || !info.includes('cluster_known_nodes:3')) return false;
    }
    return true;
  }, CLUSTER_OK_TIMEOUT_MS, 200);
  return nodes;
}

async function stopAll(children: readonly TrackedChild[]): Promise<void> {
  await Promise.allSettled(children.map((child) => child.stop('SIGTERM', 5000)));
}

async function launchGateway(env: Record<string, string>, waitReady = true): Promise<GatewayProcess> {
  const gw = await startGateway({
    env: { KEYS_FILE: '', ...EXACT, STORE_FAILURE_MODE: 'closed', UPSTREAM_URL: upstream.url, TIERS_FILE: tiersFile, ...env },
    waitReady,
  });
  gateways.push(gw);
  return gw;
}

/** 200 requests, 50 in flight, alternating between the two gateways, on one fresh pro key. */
async function exactBurst(pair: readonly GatewayProcess[]): Promise<void> {
  const { key } = await createKey(pair[0].adminUrl, 'pro');
  const results = await burst(200, 50, (i) => get(`${pair[i % 2].url}/burst/${i}`, key));
  expect(countStatuses(results)).toEqual({ 200: 150, 429: 50 });
  expect(results.find((r) => r.status === 429)?.json()).toMatchObject({ error: 'rate_limited', tier: 'pro', limit: 150 });
}

/** A fresh free key, 25 sequential requests: the first 20 pass. */
async function twentyOfTwentyFive(gw: GatewayProcess): Promise<string> {
  const { id, key } = await createKey(gw.adminUrl, 'free');
  const results = await burst(25, 1, () => get(gw.url, key));
  expect(results.map((r) => r.status)).toEqual([...Array<number>(20).fill(200), ...Array<number>(5).fill(429)]);
  return id;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tollgate-tls-'));
  certs = await makeCerts(dir);
  tiersFile = writeTiers(HOUR_TIERS, dir);
  upstream = await startUpstream();
});

afterAll(async () => {
  await Promise.allSettled(gateways.map((gw) => gw.stop()));
  await stopAll(servers);
  await upstream?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('single Redis over TLS: REDIS_URL=rediss://127.0.0.1:P', () => {
  let redis: TlsNode;
  let pair: GatewayProcess[];
  let noCa: GatewayProcess;
  let noCaStartedAt: number;

  beforeAll(async () => {
    redis = await startTlsRedis(freePort, []);
    const url = `rediss://${HOST}:${redis.port}`;
    // Started first and not awaited for readiness: it will never be ready (closed mode, no
    // store), and it spends 5 s waiting for Redis before it listens.
    noCaStartedAt = Date.now();
    noCa = await launchGateway({ REDIS_URL: url }, false);
    pair = await Promise.all([0, 1].map(() => launchGateway({ REDIS_URL: url, NODE_EXTRA_CA_CERTS: certs.ca })));
  });
  afterAll(async () => {
    await Promise.allSettled([...(pair ?? []), ...(noCa ? [noCa] : [])].map((gw) => gw.stop()));
    if (redis) await stopAll([redis.child]);
  });

  test('a fresh free key made through the admin API gets exactly 20 of 25, counted in the TLS Redis', async () => {
    const id = await twentyOfTwentyFive(pair[0]);
    expect((await cli(redis.port, ['exists', `tollgate:{${id}}:sw`])).trim()).toBe('1');
  });

  test('two gateways share the limit: a pro key, 200 requests, 50 concurrent → exactly 150', async () => {
    await exactBurst(pair);
  });

  test('without the CA the gateway refuses the server: 503 store_unavailable, and the certificate error is logged once', async () => {
    // A key that exists in that Redis: a gateway that did talk to it would let it through.
    const { key } = await createKey(pair[0].adminUrl, 'free');
    expect((await get(pair[1].url, key)).status).toBe(200);

    await waitFor('the CA-less gateway to listen', async () => (await httpRequest(`${noCa.url}/`, { timeoutMs: 2000 })).status, 15000, 100);
    const refused = await get(noCa.url, key);
    expect(refused.status).toBe(503);
    expect(refused.json()).toMatchObject({ error: 'store_unavailable' });
    const created = await httpRequest(`${noCa.adminUrl}/admin/keys`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tier: 'free', name: 'no-ca' }),
    });
    expect(created.status).toBe(503);
    expect(created.json()).toMatchObject({ error: 'store_unavailable' });
    expect((await httpRequest(`${noCa.adminUrl}/readyz`)).status).toBe(503);

    // ioredis reconnects after 50 ms, 100 ms, … then every 1 s: 12 s in, the command connection
    // has tried ~20 times and the pub/sub one (opened ~5 s in) ~15 times, so a line per attempt
    // shows here as ~15-20 lines. Measured at this commit: 'redis error' once (app.ts keeps the
    // last message), 'control channel error' 16 times (RedisControl's onError logs every one).
    await sleep(Math.max(0, noCaStartedAt + 12000 - Date.now()));
    const lines = noCa.output().split('\n').filter((line) => /certificate/i.test(line));
    expect(lines[0]).toMatch(/self-signed certificate|unable to (get local issuer|verify)/);
    const perMessage: Record<string, number> = {};
    for (const line of lines) {
      const { msg } = JSON.parse(line) as { msg: string };
      perMessage[msg] = (perMessage[msg] ?? 0) + 1;
    }
    // At most once per connection the gateway holds (commands; pub/sub), not once per reconnect attempt.
    expect(perMessage['redis error']).toBe(1);
    expect(perMessage['control channel error'] ?? 0).toBeLessThanOrEqual(1);
    expect(lines).toHaveLength((perMessage['redis error'] ?? 0) + (perMessage['control channel error'] ?? 0));
    expect(noCa.output()).toContain('redis not reachable at startup');
  });
});

describe('Redis Cluster over TLS: 3 masters, REDIS_CLUSTER_NODES + REDIS_TLS=true', () => {
  let nodes: TlsNode[];
  let pair: GatewayProcess[];

  beforeAll(async () => {
    nodes = await startTlsCluster();
    const env = { REDIS_CLUSTER_NODES: nodes.map((n) => `${HOST}:${n.port}`).join(','), REDIS_TLS: 'true', NODE_EXTRA_CA_CERTS: certs.ca };
    pair = await Promise.all([0, 1].map(() => launchGateway(env)));
  });
  afterAll(async () => {
    await Promise.allSettled((pair ?? []).map((gw) => gw.stop()));
    await stopAll((nodes ?? []).map((n) => n.child));
  });

  test('a fresh free key: exactly 20 of 25, its counter in the cluster', async () => {
    const id = await twentyOfTwentyFive(pair[0]);
    expect((await cli(nodes[0].port, ['-c', 'exists', `tollgate:{${id}}:sw`])).trim()).toBe('1');
  });

  test('two gateways share the limit: a pro key, 200 requests, 50 concurrent → exactly 150', async () => {
    await exactBurst(pair);
  });
});

describe('password-protected Redis Cluster over TLS: + REDIS_PASSWORD (--requirepass and --masterauth on every node)', () => {
  let nodes: TlsNode[];
  let gw: GatewayProcess;

  beforeAll(async () => {
    nodes = await startTlsCluster(PASSWORD);
    gw = await launchGateway({
      REDIS_CLUSTER_NODES: nodes.map((n) => `${HOST}:${n.port}`).join(','),
      REDIS_TLS: 'true',
      REDIS_PASSWORD: PASSWORD,
      NODE_EXTRA_CA_CERTS: certs.ca,
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await stopAll((nodes ?? []).map((n) => n.child));
  });

  test('a fresh free key: exactly 20 of 25, its counter in the cluster', async () => {
    const id = await twentyOfTwentyFive(gw);
    expect((await cli(nodes[0].port, ['-c', 'exists', `tollgate:{${id}}:sw`], PASSWORD)).trim()).toBe('1');
  });
});
