// nginx/nginx.conf: valid for the real nginx (`nginx -t`), and when run in front of
// stand-in gateways it round-robins, streams, forwards the client address, keeps
// upstream keep-alive usable, passes WebSocket upgrades, and answers JSON when no
// gateway is reachable.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { startEchoUpstream } from '../../scripts/echo-upstream';
import type { EchoResponse } from '../../scripts/echo-upstream';
import { NGINX_BIN, NGINX_CONF_SOURCE, nginxArgs, renderNginxConf } from './renderNginx';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-nginx-'));
  dirs.push(dir);
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function portOf(server: { address(): AddressInfo | string | null }): number {
  return (server.address() as AddressInfo).port;
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, path: string, options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const nginxProcesses: ChildProcess[] = [];

async function startNginx(gateways: string[]): Promise<{ port: number; dir: string }> {
  const dir = tempDir();
  const port = await freePort();
  const conf = renderNginxConf({ listenPort: port, gateways, dir });
  const child = spawn(NGINX_BIN, nginxArgs(conf), { stdio: ['ignore', 'ignore', 'pipe'] });
  nginxProcesses.push(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  try {
    await waitForPort(port, child);
  } catch (err) {
    const log = readFileSafe(join(dir, 'error.log'));
    throw new Error(`${(err as Error).message}\nstderr: ${stderr}\nerror.log: ${log}`);
  }
  return { port, dir };
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '(none)';
  }
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

afterAll(async () => {
  await Promise.all(nginxProcesses.map(stopProcess));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('nginx/nginx.conf', () => {
  const source = readFileSync(NGINX_CONF_SOURCE, 'utf8');

  it('has the directives the gateway relies on', () => {
    expect(source.match(/^\s*listen 8080;$/gm)).toHaveLength(1);
    expect(source).toMatch(/upstream tollgate_gateways \{[^}]*server gateway:8080[^}]*keepalive 64;/s);
    expect(source).toMatch(/map \$http_upgrade \$connection_upgrade \{/);
    for (const directive of [
      'proxy_pass http://tollgate_gateways;',
      'proxy_http_version 1.1;',
      'proxy_set_header Upgrade $http_upgrade;',
      'proxy_set_header Connection $connection_upgrade;',
      'proxy_set_header Host $host;',
      'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
      'proxy_set_header X-Forwarded-Proto $scheme;',
      'proxy_connect_timeout 5s;',
      'proxy_read_timeout 60s;',
      'proxy_send_timeout 60s;',
      'client_max_body_size 50m;',
      'proxy_request_buffering off;',
      'proxy_buffering off;',
    ]) {
      expect(source).toContain(directive);
    }
  });

  it('passes `nginx -t` once rendered for a test', async () => {
    const dir = tempDir();
    const conf = renderNginxConf({
      listenPort: await freePort(),
      gateways: [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`],
      dir,
    });
    const rendered = readFileSync(conf, 'utf8');
    const directives = rendered.split('\n').filter((line) => !/^\s*#/.test(line)).join('\n');
    expect(directives).not.toContain('gateway:8080');
    expect(rendered.match(/^\s*server 127\.0\.0\.1:\d+ max_fails=3 fail_timeout=10s;$/gm)).toHaveLength(3);

    const result = spawnSync(NGINX_BIN, ['-t', ...nginxArgs(conf)], { encoding: 'utf8' });
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: expect.stringContaining('test is successful') });
  });

  it('rejects a gateway that is not host:port and a bad listen port', () => {
    expect(() => renderNginxConf({ listenPort: 8080, gateways: ['gateway 8080'], dir: tempDir() })).toThrow(/host:port/);
    expect(() => renderNginxConf({ listenPort: 0, gateways: ['127.0.0.1:1'], dir: tempDir() })).toThrow(/listenPort/);
  });
});

describe('nginx in front of stand-in gateways', () => {
  const servers: http.Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    })));
  });

  it('round-robins, forwards the client address, streams bodies and keeps upstream keep-alive', async () => {
    const hits = [0, 0];
    const gateways: string[] = [];
    for (const i of [0, 1]) {
      const server = await startEchoUpstream({ port: 0, host: '127.0.0.1' });
      servers.push(server);
      server.on('request', () => {
        hits[i] += 1;
      });
      gateways.push(`127.0.0.1:${portOf(server)}`);
    }
    const { port } = await startNginx(gateways);

    const first = await request(port, '/v1/things?page=2', { headers: { 'x-api-key': 'demo_pro_key_789', 'x-forwarded-for': '203.0.113.7' } });
    expect(first.status).toBe(200);
    const echo = JSON.parse(first.body) as EchoResponse;
    expect(echo.path).toBe('/v1/things');
    expect(echo.query).toEqual({ page: '2' });
    expect(echo.headers['x-api-key']).toBe('demo_pro_key_789');
    // nginx appends its peer (us) to what the client claimed.
    expect(echo.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(echo.headers['x-forwarded-proto']).toBe('http');
    // $host: the request's host name, validated and without the port.
    expect(echo.headers.host).toBe('127.0.0.1');
    // Empty Connection for non-upgrade requests: nginx sends none, so the connection to
    // the gateway stays in the keepalive pool instead of `Connection: close`.
    expect(echo.headers.connection).toBeUndefined();

    for (let i = 0; i < 5; i++) expect((await request(port, '/')).status).toBe(200);
    expect(hits[0]).toBeGreaterThan(0);
    expect(hits[1]).toBeGreaterThan(0);

    // A 1 MiB upload goes through whole (client_max_body_size is 50m).
    const upload = await request(port, '/upload', { method: 'POST', body: Buffer.alloc(1024 * 1024, 'a') });
    expect(upload.status).toBe(200);
    expect((JSON.parse(upload.body) as EchoResponse).bodyBytes).toBe(1024 * 1024);
  });

  it('passes WebSocket upgrades through', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((resolve) => wss.once('listening', resolve));
    let upgradeHeaders: http.IncomingHttpHeaders = {};
    wss.on('connection', (socket, req) => {
      upgradeHeaders = req.headers;
      socket.on('message', (data) => socket.send(`echo:${data.toString()}`));
    });
    try {
      const { port } = await startNginx([`127.0.0.1:${portOf(wss)}`]);
      const client = new WebSocket(`ws://127.0.0.1:${port}/stream`, { headers: { 'x-api-key': 'demo_pro_key_789' } });
      const reply = await new Promise<string>((resolve, reject) => {
        client.once('open', () => client.send('hello'));
        client.once('message', (data) => resolve(data.toString()));
        client.once('error', reject);
      });
      client.close();
      expect(reply).toBe('echo:hello');
      expect(upgradeHeaders.connection?.toLowerCase()).toBe('upgrade');
      expect(upgradeHeaders['x-api-key']).toBe('demo_pro_key_789');
    } finally {
      for (const socket of wss.clients) socket.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });

  it('answers a JSON 502 when no gateway is reachable', async () => {
    const { port } = await startNginx([`127.0.0.1:${await freePort()}`]);
    const reply = await request(port, '/anything');
    expect(reply.status).toBe(502);
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(reply.body)).toEqual({ error: 'bad_gateway', message: expect.any(String) });
  });
});
