import net from 'node:net';

const LOOPBACK = '127.0.0.1';

export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host: LOOPBACK, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`unexpected listen address ${String(address)}`));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

export async function isPortFree(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: LOOPBACK, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** `count` free ports, all different. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  // bind(0) may hand the same port out twice once the first listener is closed.
  for (let attempt = 0; ports.size < count; attempt++) {
    if (attempt > count * 20) throw new Error(`could not find ${count} distinct free ports`);
    ports.add(await freePort());
  }
  return [...ports];
}

// Redis Cluster listens on P and on the bus port P + 10000
// (https://redis.io/docs/latest/operate/oss_and_stack/management/scaling/#redis-cluster-tcp-ports).
// The kernel's ephemeral range (32768-60999 here) would often put P + 10000 past 65535 or
// hand it to an outgoing connection, so both ports are drawn below that range instead:
// P in [10000, 22000), P + 10000 in [20000, 32000).
const CLUSTER_PORT_MIN = 10000;
const CLUSTER_PORT_MAX = 22000;
export const CLUSTER_BUS_OFFSET = 10000;

/**
 * A port P such that P and P + 10000 are both free and neither is in `taken`
 * (both are added to `taken`). Another process can still grab them before Redis binds;
 * callers retry on "Address already in use".
 */
export async function freeClusterPort(taken: Set<number> = new Set<number>()): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = CLUSTER_PORT_MIN + Math.floor(Math.random() * (CLUSTER_PORT_MAX - CLUSTER_PORT_MIN));
    const bus = port + CLUSTER_BUS_OFFSET;
    if (taken.has(port) || taken.has(bus)) continue;
    if ((await isPortFree(port)) && (await isPortFree(bus))) {
      taken.add(port);
      taken.add(bus);
      return port;
    }
  }
  throw new Error(`no free port P with P + ${CLUSTER_BUS_OFFSET} free in [${CLUSTER_PORT_MIN}, ${CLUSTER_PORT_MAX})`);
}
