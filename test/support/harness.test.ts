import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Cluster, Redis } from 'ioredis';
import WebSocket from 'ws';
import { burst, countStatuses, httpRequest } from './http';
import { freePort, isPortFree } from './ports';
import { waitFor } from './processes';
import { startRedis, type RedisServer } from './redis';
import { startRedisCluster, type RedisClusterHandle } from './redisCluster';
import { startRedisSentinel, type SentinelHandle } from './redisSentinel';
import { redisCommand } from './resp';
import { startUpstream, type Upstream } from './upstream';

// No retries and no offline queue: a dead or paused Redis must fail the call, not stall it.
async function strictClient(url: string, extra: { commandTimeout?: number } = {}): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    ...extra,
  });
  await client.connect();
  return client;
}

describe('ports and waits', () => {
  test('freePort returns a port nothing listens on', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(await isPortFree(port)).toBe(true);
  });

  test('waitFor returns the first truthy value and times out with a clear message', async () => {
    let calls = 0;
    await expect(waitFor('three calls', async () => ++calls >= 3 && calls, 1000, 5)).resolves.toBe(3);
    await expect(waitFor('never', async () => false, 100, 10)).rejects.toThrow(
      'timed out after 100 ms waiting for never',
    );
    // A probe that never settles must not make the wait unbounded.
    await expect(waitFor('a hung probe', () => new Promise<boolean>(() => undefined), 100)).rejects.toThrow(
      'timed out after 100 ms waiting for a hung probe',
    );
  });
});

describe('startRedis', () => {
  let redis: RedisServer | undefined;
  afterAll(async () => {
    await redis?.stop();
  });

  test('answers, dies, comes back on the same port, and counts commands', async () => {
    redis = await startRedis();
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);

    const client = await strictClient(redis.url);
    try {
      expect(await client.ping()).toBe('PONG');
      await redis.resetStats();
      await client.set('harness:k', 'v');
      expect((await redis.commandStats()).set).toBe(1);
    } finally {
      client.disconnect();
    }

    await redis.kill();
    await expect(redisCommand(redis.port, ['PING'])).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    await redis.restart();
    const again = await strictClient(redis.url);
    try {
      expect(await again.ping()).toBe('PONG');
      // Nothing is persisted: a restart is a Redis that lost its data.
      expect(await again.get('harness:k')).toBeNull();
    } finally {
      again.disconnect();
    }
    expect((await redis.cli('SET', 'a', '1')).trim()).toBe('OK');
  });

  test('pause makes it hang, resume brings it back', async () => {
    if (redis === undefined) throw new Error('needs the server from the previous test');
    const server = redis;
    const client = await strictClient(server.url, { commandTimeout: 300 });
    try {
      expect(await client.ping()).toBe('PONG');
      server.pause();
      await expect(client.ping()).rejects.toThrow(/timed out/i);
      server.resume();
      expect(await client.ping()).toBe('PONG');
    } finally {
      server.resume();
      client.disconnect();
    }
  });

  test('with a password, and stop removes everything', async () => {
    const secured = await startRedis({ password: 'p@ss word' });
    try {
      expect(secured.url).toBe(`redis://:p%40ss%20word@127.0.0.1:${secured.port}`);
      const client = await strictClient(secured.url);
      try {
        expect(await client.ping()).toBe('PONG');
      } finally {
        client.disconnect();
      }
      expect(await secured.cli('PING')).toContain('PONG');
      await expect(redisCommand(secured.port, ['PING'])).rejects.toThrow(/NOAUTH/);
    } finally {
      await secured.stop();
    }
    expect(await isPortFree(secured.port)).toBe(true);
  });
});

describe('startUpstream and the http client', () => {
  let upstream: Upstream | undefined;
  beforeAll(async () => {
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
  });
  function up(): Upstream {
    if (upstream === undefined) throw new Error('upstream did not start');
    return upstream;
  }

  test('echoes a streamed 5 MB body as length and sha256, with arbitrary request headers', async () => {
    const body = randomBytes(5 * 1024 * 1024);
    const chunks = Array.from({ length: 80 }, (_, i) => body.subarray(i * 65536, (i + 1) * 65536));
    const result = await httpRequest(`${up().url}/echo?x=1`, {
      method: 'POST',
      headers: { 'x-forwarded-for': '203.0.113.7', 'x-ratelimit-limit': '5', 'x-multi': ['a', 'b'] },
      body: Readable.from(chunks),
    });
    expect(result.status).toBe(200);
    const echo = result.json<{ method: string; url: string; headers: Record<string, string>; bodyLength: number; bodySha256: string }>();
    expect(echo).toMatchObject({
      method: 'POST',
      url: '/echo?x=1',
      bodyLength: body.length,
      bodySha256: createHash('sha256').update(body).digest('hex'),
    });
    expect(echo.headers['x-forwarded-for']).toBe('203.0.113.7');
    expect(echo.headers['x-ratelimit-limit']).toBe('5');
    expect(echo.headers['x-multi']).toBe('a, b');
    expect(up().received.at(-1)).toMatchObject({ method: 'POST', bodyLength: body.length });
  });

  test('/slow delays the head, /hang never answers, /reset resets', async () => {
    const started = Date.now();
    expect((await httpRequest(`${up().url}/slow?ms=300`)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);

    await expect(httpRequest(`${up().url}/hang`, { timeoutMs: 200 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    await expect(httpRequest(`${up().url}/reset`)).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  test('/upstream-ratelimit sets upstream limit headers, /big streams N bytes', async () => {
    const limited = await httpRequest(`${up().url}/upstream-ratelimit`);
    expect(limited.headers).toMatchObject({
      'x-ratelimit-limit': '999',
      'x-ratelimit-remaining': '998',
      'x-ratelimit-reset': '1',
      ratelimit: '"up";r=1;t=1',
    });
    const big = await httpRequest(`${up().url}/big?bytes=1000000`);
    expect(big.rawBody.length).toBe(1000000);
    expect(big.headers['content-length']).toBe('1000000');
  });

  test('echoes WebSocket messages on any path', async () => {
    const socket = new WebSocket(`${up().url.replace('http', 'ws')}/any/path`);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      const reply = new Promise<string>((resolve) => socket.once('message', (data: Buffer) => resolve(data.toString())));
      socket.send('hello');
      expect(await reply).toBe('hello');
    } finally {
      socket.terminate();
    }
    expect(up().received.at(-1)).toMatchObject({ method: 'GET', url: '/any/path' });
  });

  test('burst keeps at most `concurrency` calls in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    const results = await burst(20, 4, async (i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      try {
        return await httpRequest(`${up().url}/slow?ms=20&i=${i}`);
      } finally {
        inFlight--;
      }
    });
    expect(peak).toBe(4);
    expect(countStatuses(results)).toEqual({ 200: 20 });
    expect(results[7]?.json<{ url: string }>().url).toBe('/slow?ms=20&i=7');
  });
});

describe('startRedisCluster', () => {
  let cluster: RedisClusterHandle | undefined;
  afterAll(async () => {
    await cluster?.stop();
  });

  test('three masters serve keys of every slot range', async () => {
    const started = Date.now();
    cluster = await startRedisCluster();
    const startMs = Date.now() - started;
    expect(cluster.ports).toHaveLength(3);
    expect(cluster.nodes).toBe(cluster.ports.map((port) => `127.0.0.1:${port}`).join(','));

    const seeds = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
    const client = new Cluster(seeds, { redisOptions: { maxRetriesPerRequest: 1 } });
    try {
      await cluster.resetStats();
      const keys = Array.from({ length: 30 }, (_, i) => `harness:${i}`);
      for (const key of keys) await client.set(key, key);
      for (const key of keys) expect(await client.get(key)).toBe(key);

      const perNode = await Promise.all(cluster.servers.map((server) => server.commandStats()));
      for (const stats of perNode) expect(stats.set ?? 0).toBeGreaterThan(0);
      expect((await cluster.commandStats()).set).toBe(keys.length);
    } finally {
      client.disconnect();
    }
    expect(startMs).toBeLessThan(20000);
  });
});

describe('startRedisSentinel', () => {
  let sentinel: SentinelHandle | undefined;
  afterAll(async () => {
    await sentinel?.stop();
  });

  test('clients find the master through the sentinel, and failover moves it', async () => {
    sentinel = await startRedisSentinel();
    const handle = sentinel;
    expect(await handle.currentMasterPort()).toBe(handle.master.port);

    const [host, portText] = handle.sentinels.split(':');
    const sentinels = [{ host: host ?? '', port: Number(portText) }];
    const client = new Redis({ sentinels, name: handle.name, maxRetriesPerRequest: 1 });
    // Reconnecting during a failover emits 'error'; commands still report their own failures.
    client.on('error', () => undefined);
    try {
      await client.set('harness:s', 'before');
      expect(await client.get('harness:s')).toBe('before');

      await handle.failover();
      expect(await handle.currentMasterPort()).toBe(handle.replica.port);

      // ioredis is disconnected when the old master is demoted, asks the sentinel again and
      // lands on the promoted replica.
      const writesTo = (port: number): Promise<boolean> =>
        waitFor(
          `the sentinel client to write to the master on ${port}`,
          async () =>
            (await client.set('harness:s', String(port))) === 'OK' &&
            (await client.info('server')).includes(`tcp_port:${port}\r\n`),
          5000,
          100,
        );
      await writesTo(handle.replica.port);

      // And back: the old master must first be known to the sentinel as a healthy replica.
      await handle.failover();
      expect(await handle.currentMasterPort()).toBe(handle.master.port);
      // Also lets the client finish reconnecting, so disconnect() leaves no timer behind.
      await writesTo(handle.master.port);
      expect(await client.get('harness:s')).toBe(String(handle.master.port));
    } finally {
      client.disconnect();
    }
  });

  test('stop leaves nothing running', async () => {
    if (sentinel === undefined) throw new Error('needs the setup from the previous test');
    const { master, replica, sentinelPort } = sentinel;
    await sentinel.stop();
    sentinel = undefined;
    for (const port of [master.port, replica.port, sentinelPort]) expect(await isPortFree(port)).toBe(true);
  });
});

test('temp dirs of stopped servers are removed', async () => {
  const redis = await startRedis();
  const dir = (await redis.cli('CONFIG', 'GET', 'dir')).split('\n')[1]?.trim() ?? '';
  expect(existsSync(dir)).toBe(true);
  await redis.stop();
  expect(existsSync(dir)).toBe(false);
});
