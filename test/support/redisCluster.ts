import { freeClusterPort } from './ports';
import { runToExit, waitFor } from './processes';
import { isAddressInUse, startRedis, type RedisServer } from './redis';
import { redisCommand } from './resp';

export interface RedisClusterHandle {
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3", the REDIS_CLUSTER_NODES format. */
  nodes: string;
  ports: number[];
  /** The three masters, for killing or pausing one. */
  servers: RedisServer[];
  stop(): Promise<void>;
  /** Calls per command, summed over the masters. */
  commandStats(): Promise<Record<string, number>>;
  /** CONFIG RESETSTAT on every master. */
  resetStats(): Promise<void>;
}

const MASTERS = 3;
const NODE_START_ATTEMPTS = 5;
const CREATE_TIMEOUT_MS = 30000;
const STATE_OK_TIMEOUT_MS = 20000;

async function startNode(taken: Set<number>): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < NODE_START_ATTEMPTS; attempt++) {
    const port = await freeClusterPort(taken);
    try {
      return await startRedis({
        port,
        extraArgs: [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', `nodes-${port}.conf`,
          '--cluster-node-timeout', '2000',
        ],
      });
    } catch (error) {
      if (!isAddressInUse(error)) throw error;
      lastError = error;
    }
  }
  throw lastError;
}

async function stopAll(servers: readonly RedisServer[]): Promise<void> {
  const results = await Promise.allSettled(servers.map((server) => server.stop()));
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/** Three masters, no replicas, all 16384 slots assigned; resolves once every node says cluster_state:ok. */
export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const taken = new Set<number>();
  const started = await Promise.allSettled(Array.from({ length: MASTERS }, () => startNode(taken)));
  const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) {
    await stopAll(servers);
    throw failed.reason;
  }

  const ports = servers.map((server) => server.port);
  const nodes = ports.map((port) => `127.0.0.1:${port}`);
  try {
    const created = await runToExit(
      'redis-cli --cluster create',
      'redis-cli',
      ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'],
      { timeoutMs: CREATE_TIMEOUT_MS },
    );
    if (created.code !== 0) {
      throw new Error(`redis-cli --cluster create exited with code ${String(created.code)}:\n${created.stdout}${created.stderr}`);
    }
    // `--cluster create` returns once the config epochs agree, but a node can still be
    // cluster_state:fail until it has heard from the others over the bus.
    await waitFor(
      `cluster_state:ok with ${MASTERS} known nodes on ports ${ports.join(', ')}`,
      async () => {
        for (const port of ports) {
          const info = await redisCommand(port, ['CLUSTER', 'INFO']);
          if (typeof info !== 'string') return false;
          if (!info.includes('cluster_state:ok') || !info.includes(`cluster_known_nodes:${MASTERS}`)) return false;
        }
        return true;
      },
      STATE_OK_TIMEOUT_MS,
      100,
    );
  } catch (error) {
    await stopAll(servers);
    throw error;
  }

  return {
    nodes: nodes.join(','),
    ports,
    servers,
    stop: () => stopAll(servers),
    async commandStats() {
      const total: Record<string, number> = {};
      for (const stats of await Promise.all(servers.map((server) => server.commandStats()))) {
        for (const [name, calls] of Object.entries(stats)) total[name] = (total[name] ?? 0) + calls;
      }
      return total;
    },
    async resetStats() {
      await Promise.all(servers.map((server) => server.resetStats()));
    },
  };
}
