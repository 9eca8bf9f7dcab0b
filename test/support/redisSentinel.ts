import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports';
import { spawnTracked, waitFor, waitForAlive, type TrackedChild } from './processes';
import { startRedis, type RedisServer } from './redis';
import { parseInfo, redisCommand, redisInfo, type RespReply } from './resp';

export interface SentinelHandle {
  /** "127.0.0.1:S", the REDIS_SENTINELS format. */
  sentinels: string;
  sentinelPort: number;
  /** The monitored master's name, the REDIS_SENTINEL_NAME value. */
  name: string;
  /** The server started as master (after a failover it is the replica). */
  master: RedisServer;
  /** The server started as replica (after a failover it is the master). */
  replica: RedisServer;
  /** The port the sentinel currently reports as master. */
  currentMasterPort(): Promise<number>;
  /**
   * Resolves once the sentinel reports `port` as master and that server says role:master,
   * e.g. after killing the master (down-after-milliseconds is 1 s).
   */
  waitForMaster(port: number, timeoutMs?: number): Promise<void>;
  /** SENTINEL FAILOVER; resolves once the sentinel reports the other server as master. */
  failover(): Promise<void>;
  stop(): Promise<void>;
}

const NAME = 'tollgate-master';
const SYNC_TIMEOUT_MS = 10000;
const DISCOVERY_TIMEOUT_MS = 15000;
const FAILOVER_TIMEOUT_MS = 30000;

function fieldsOf(entry: RespReply): Record<string, string> {
  const fields: Record<string, string> = {};
  if (!Array.isArray(entry)) return fields;
  for (let i = 0; i + 1 < entry.length; i += 2) {
    const key = entry[i];
    const value = entry[i + 1];
    if (typeof key === 'string' && typeof value === 'string') fields[key] = value;
  }
  return fields;
}

async function sentinelMasterPort(sentinelPort: number): Promise<number> {
  const reply = await redisCommand(sentinelPort, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', NAME]);
  if (!Array.isArray(reply) || typeof reply[1] !== 'string') {
    throw new Error(`SENTINEL GET-MASTER-ADDR-BY-NAME ${NAME} returned ${JSON.stringify(reply)}`);
  }
  return Number(reply[1]);
}

/** Whether the sentinel sees `port` as a healthy replica it could promote. */
async function sentinelKnowsReplica(sentinelPort: number, port: number): Promise<boolean> {
  const reply = await redisCommand(sentinelPort, ['SENTINEL', 'REPLICAS', NAME]);
  if (!Array.isArray(reply)) return false;
  return reply.some((entry) => {
    const fields = fieldsOf(entry);
    // master-link-status comes from the replica's own INFO, so the sentinel has polled it:
    // SENTINEL FAILOVER answers NOGOODSLAVE until then.
    return fields.port === String(port) && fields.flags === 'slave' && fields['master-link-status'] === 'ok';
  });
}

/** Runs every stop even when one fails, then reports the first failure. */
async function stopEach(stops: Array<() => Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(stops.map((stop) => stop()));
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/** A master, one replica and one sentinel monitoring them (quorum 1). */
export async function startRedisSentinel(): Promise<SentinelHandle> {
  const master = await startRedis();
  let replica: RedisServer | undefined;
  let sentinel: TrackedChild | undefined;
  let dir: string | undefined;
  const cleanup = async (): Promise<void> => {
    // The sentinel goes first so it does not start a failover while the servers stop.
    if (sentinel !== undefined) await sentinel.stop('SIGTERM', 5000);
    const startedReplica = replica;
    await stopEach([() => master.stop(), ...(startedReplica !== undefined ? [() => startedReplica.stop()] : [])]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  };

  try {
    const started = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', String(master.port)] });
    replica = started;
    // The sentinel learns replicas from the master's INFO, so the replica must be attached first.
    await waitFor(
      `replica ${started.port} to sync with master ${master.port}`,
      async () => parseInfo(await redisInfo(started.port, 'replication')).master_link_status === 'up',
      SYNC_TIMEOUT_MS,
    );

    const sentinelPort = await freePort();
    dir = mkdtempSync(path.join(os.tmpdir(), `tollgate-sentinel-${sentinelPort}-`));
    const confPath = path.join(dir, 'sentinel.conf');
    // Sentinel rewrites its config file (known replicas, epochs), so it lives in the temp dir.
    writeFileSync(
      confPath,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${NAME} 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds ${NAME} 1000`,
        `sentinel failover-timeout ${NAME} 5000`,
        '',
      ].join('\n'),
    );
    const sentinelChild = await spawnTracked(`redis-sentinel :${sentinelPort}`, 'redis-server', [confPath, '--sentinel'], {
      cwd: dir,
    });
    sentinel = sentinelChild;
    await waitForAlive(
      sentinelChild,
      `sentinel ${sentinelPort} to know replica ${started.port} of ${NAME}`,
      () => sentinelKnowsReplica(sentinelPort, started.port),
      DISCOVERY_TIMEOUT_MS,
      100,
    );

    const servers = [master, started];
    const untilMaster = (port: number, timeoutMs: number): Promise<true> =>
      waitForAlive(
        sentinelChild,
        `sentinel to report 127.0.0.1:${port} as master of ${NAME}`,
        async () =>
          (await sentinelMasterPort(sentinelPort)) === port &&
          parseInfo(await redisInfo(port, 'replication')).role === 'master',
        timeoutMs,
        100,
      );
    return {
      sentinels: `127.0.0.1:${sentinelPort}`,
      sentinelPort,
      name: NAME,
      master,
      replica: started,
      currentMasterPort: () => sentinelMasterPort(sentinelPort),
      async waitForMaster(port, timeoutMs = FAILOVER_TIMEOUT_MS) {
        await untilMaster(port, timeoutMs);
      },
      async failover() {
        const deadline = Date.now() + FAILOVER_TIMEOUT_MS;
        const from = await sentinelMasterPort(sentinelPort);
        const target = servers.find((server) => server.port !== from);
        if (target === undefined) throw new Error(`sentinel reports unknown master port ${from}`);
        // NOGOODSLAVE until the sentinel has polled the replica (e.g. the old master right
        // after a previous failover turned it into one); INPROG means one is under way.
        await waitForAlive(
          sentinelChild,
          `SENTINEL FAILOVER ${NAME} to be accepted`,
          async () => {
            try {
              return (await redisCommand(sentinelPort, ['SENTINEL', 'FAILOVER', NAME])) === 'OK';
            } catch (error) {
              if (error instanceof Error && error.message.startsWith('INPROG')) return true;
              throw error;
            }
          },
          Math.max(0, deadline - Date.now()),
          200,
        );
        await untilMaster(target.port, Math.max(0, deadline - Date.now()));
        // A forced failover leaves the old master running as a master: the sentinel only
        // demotes it about 8 s later (sentinel.c waits SENTINEL_PUBLISH_PERIOD * 4 before
        // +convert-to-slave), and until then clients connected to it keep writing there.
        // Doing now what the sentinel would do then (REPLICAOF, then drop the clients so they
        // ask the sentinel again) makes a failover take about a second instead of ten.
        // A dead or paused old master needs none of this, and the sentinel does it anyway
        // once the old master is back, so failures here are not the failover's.
        const old = servers.find((server) => server.port === from);
        if (old !== undefined) {
          try {
            await redisCommand(old.port, ['REPLICAOF', '127.0.0.1', String(target.port)]);
            await redisCommand(old.port, ['CLIENT', 'KILL', 'TYPE', 'normal']);
            await redisCommand(old.port, ['CLIENT', 'KILL', 'TYPE', 'pubsub']);
          } catch {
            // See above.
          }
        }
      },
      stop: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
