import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { makeCerts, type Certs } from '../support/certs';
import { runGatewayToExit, startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest } from '../support/http';
import { sleep, waitFor } from '../support/processes';
import { startRedis } from '../support/redis';
import { secretDir } from '../support/secretDir';
import { fileFingerprint, h2Connect, peerCertificate, tlsAgent } from '../support/tlsClient';
import { startUpstream, type Upstream } from '../support/upstream';

/*
 * SPEC §11: the certificate pair is re-read when its files change (a Kubernetes Secret's
 * `..data` symlink swap) and on SIGHUP; new connections get the new certificate, open ones
 * carry on; a bad pair is rejected with a log line and an audit event and the old one stays.
 * At startup an unreadable file, a non-PEM file or a mismatched pair is exit 2, one line.
 */

const PRO = 'demo_pro_key_789';

let root: string;
let first: Certs;
let second: Certs;
let upstream: Upstream;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'tollgate-tls-reload-'));
  mkdirSync(path.join(root, 'a'));
  mkdirSync(path.join(root, 'b'));
  [first, second] = await Promise.all([makeCerts(path.join(root, 'a')), makeCerts(path.join(root, 'b'))]);
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
  rmSync(root, { recursive: true, force: true });
});

const BOTH_CAS = () => [first.ca, second.ca];

function startTls(certFile: string, keyFile: string, extra: Record<string, string> = {}): Promise<GatewayProcess> {
  return startGateway({ env: { UPSTREAM_URL: upstream.url, TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, ...extra } });
}

/** GET over `agent`; the status, the connection it went over and that connection's certificate. */
function getOn(agent: https.Agent, port: number): Promise<{ status: number; socket: TLSSocket; fingerprint: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/items', agent, headers: { 'x-api-key': PRO }, timeout: 10000 }, (res: IncomingMessage) => {
      const socket = res.socket as TLSSocket;
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, socket, fingerprint, reused: req.reusedSocket }));
    });
    req.on('timeout', () => req.destroy(new Error('no response within 10 s')));
    req.on('error', reject);
  });
}

test('Secret symlink swap: new connections (HTTPS/1.1 and h2) get the new certificate within 2 s; open keep-alive and h2 connections carry on', async () => {
  const secret = secretDir(first.cert, first.key);
  const gw = await startTls(secret.certFile, secret.keyFile);
  const oneSocket = tlsAgent(BOTH_CAS(), { maxSockets: 1, ALPNProtocols: ['http/1.1'] });
  try {
    expect((await peerCertificate(gw.port, BOTH_CAS())).fingerprint).toBe(fileFingerprint(first.cert));
    const before = await getOn(oneSocket, gw.port);
    expect(before.status).toBe(200);
    const h2 = await h2Connect(`https://127.0.0.1:${gw.port}`, BOTH_CAS());
    expect((await h2.request('/items', { headers: { 'x-api-key': PRO } })).status).toBe(200);

    secret.swap(second.cert, second.key);
    await waitFor('the new certificate on a new connection', async () => (await peerCertificate(gw.port, BOTH_CAS())).fingerprint === fileFingerprint(second.cert), 2000);
    await gw.waitForOutput(new RegExp(`"event":"tls.reloaded".*"fingerprint":"${fileFingerprint(second.cert)}"`));

    // The kept-alive HTTPS/1.1 connection: same socket, still the old certificate, still served.
    const after = await getOn(oneSocket, gw.port);
    expect(after).toMatchObject({ status: 200, reused: true });
    expect(after.socket).toBe(before.socket);
    expect(after.fingerprint).toBe(fileFingerprint(first.cert));
    // The open h2 session: new streams on it are still served.
    const onSession = await h2.request('/items', { headers: { 'x-api-key': PRO } });
    expect(onSession.status).toBe(200);
    expect(onSession.streamId).toBe(3);
    await h2.close();
    // A new h2 session gets the new certificate and still negotiates h2.
    expect(await peerCertificate(gw.port, BOTH_CAS(), ['h2'])).toEqual({ fingerprint: fileFingerprint(second.cert), alpn: 'h2' });
  } finally {
    oneSocket.destroy();
    expect(await gw.stop()).toBe(0);
    rmSync(secret.dir, { recursive: true, force: true });
  }
});

test('a mismatched pair written: rejected with a log line and a tls.rejected audit event, the old certificate stays; the fixed pair is then taken', async () => {
  const dir = mkdtempSync(path.join(root, 'files-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  copyFileSync(first.cert, certFile);
  copyFileSync(first.key, keyFile);
  const gw = await startTls(certFile, keyFile);
  try {
    copyFileSync(second.key, keyFile); // the key of another certificate
    await gw.waitForOutput('"event":"tls.rejected"');
    expect(gw.output()).toMatch(/"level":50.*does not belong to the certificate.*"msg":"TLS pair rejected; the certificate in force stays"/);
    expect(gw.output()).toMatch(new RegExp(`"event":"tls.rejected".*"kept":"${fileFingerprint(first.cert)}"`));
    expect((await peerCertificate(gw.port, BOTH_CAS())).fingerprint).toBe(fileFingerprint(first.cert));
    const metrics = (await httpRequest(`${gw.adminUrl}/metrics`)).body;
    expect(metrics).toMatch(/^tollgate_config_reloads_total\{file="tls",result="rejected"\} [1-9]/m);
    expect(metrics).toMatch(/^tollgate_config_last_reload_ok\{file="tls"\} 0$/m);

    writeFileSync(keyFile, 'not a key');
    await waitFor('a second rejection', async () => (gw.output().match(/"event":"tls.rejected"/g) ?? []).length >= 2, 5000);
    expect((await peerCertificate(gw.port, BOTH_CAS())).fingerprint).toBe(fileFingerprint(first.cert));

    copyFileSync(second.cert, certFile);
    copyFileSync(second.key, keyFile);
    await waitFor('the fixed pair in force', async () => (await peerCertificate(gw.port, BOTH_CAS())).fingerprint === fileFingerprint(second.cert), 5000);
  } finally {
    expect(await gw.stop()).toBe(0);
  }
});

test('SIGHUP re-reads the pair, also a change the directory watch cannot see (files behind a symlink elsewhere)', async () => {
  const watched = mkdtempSync(path.join(root, 'watched-'));
  const elsewhere = mkdtempSync(path.join(root, 'elsewhere-'));
  copyFileSync(first.cert, path.join(elsewhere, 'cert.pem'));
  copyFileSync(first.key, path.join(elsewhere, 'key.pem'));
  symlinkSync(path.join(elsewhere, 'cert.pem'), path.join(watched, 'cert.pem'));
  symlinkSync(path.join(elsewhere, 'key.pem'), path.join(watched, 'key.pem'));
  const gw = await startTls(path.join(watched, 'cert.pem'), path.join(watched, 'key.pem'));
  try {
    copyFileSync(second.cert, path.join(elsewhere, 'cert.pem'));
    copyFileSync(second.key, path.join(elsewhere, 'key.pem'));
    await sleep(1000);
    expect((await peerCertificate(gw.port, BOTH_CAS())).fingerprint).toBe(fileFingerprint(first.cert));
    process.kill(gw.pid, 'SIGHUP');
    await gw.waitForOutput(/"event":"tls.reloaded".*"actor":"SIGHUP"/);
    expect((await peerCertificate(gw.port, BOTH_CAS())).fingerprint).toBe(fileFingerprint(second.cert));
  } finally {
    expect(await gw.stop()).toBe(0);
  }
});

test('WORKERS=2: SIGHUP to the primary reaches every worker; a bad pair stops the primary at startup (exit 2)', async () => {
  const redis = await startRedis();
  const watched = mkdtempSync(path.join(root, 'w2-watched-'));
  const elsewhere = mkdtempSync(path.join(root, 'w2-elsewhere-'));
  copyFileSync(first.cert, path.join(elsewhere, 'cert.pem'));
  copyFileSync(first.key, path.join(elsewhere, 'key.pem'));
  symlinkSync(path.join(elsewhere, 'cert.pem'), path.join(watched, 'cert.pem'));
  symlinkSync(path.join(elsewhere, 'key.pem'), path.join(watched, 'key.pem'));
  const env = { REDIS_URL: redis.url, WORKERS: '2', REDIS_KEY_PREFIX: 'tlsw2:' };
  const gw = await startTls(path.join(watched, 'cert.pem'), path.join(watched, 'key.pem'), env);
  try {
    copyFileSync(second.cert, path.join(elsewhere, 'cert.pem'));
    copyFileSync(second.key, path.join(elsewhere, 'key.pem'));
    process.kill(gw.pid, 'SIGHUP');
    await waitFor('two workers reloaded', async () => (gw.output().match(/"event":"tls.reloaded"/g) ?? []).length >= 2, 5000);
    // New connections are spread over the workers: every one sees the new certificate.
    for (let i = 0; i < 10; i++) expect((await peerCertificate(gw.port, BOTH_CAS())).fingerprint).toBe(fileFingerprint(second.cert));
  } finally {
    expect(await gw.stop()).toBe(0);
  }
  try {
    const bad = await runGatewayToExit({ env: { UPSTREAM_URL: upstream.url, TLS_CERT_FILE: first.cert, TLS_KEY_FILE: second.key, ...env } });
    expect(bad.code).toBe(2);
    expect(bad.stderr.split('\n').filter((l) => l !== '')).toEqual([expect.stringContaining('TLS_KEY_FILE')]);
  } finally {
    await redis.stop();
  }
});

test('TLS_MIN_VERSION=TLSv1.3: a TLS 1.2-only client is refused, a 1.3 one served; HTTP2=false offers no h2', async () => {
  const gw = await startTls(first.cert, first.key, { TLS_MIN_VERSION: 'TLSv1.3', HTTP2: 'false' });
  try {
    const old = tlsAgent([first.ca], { maxVersion: 'TLSv1.2' });
    await expect(getOn(old, gw.port)).rejects.toThrow(/protocol version|alert/i);
    old.destroy();
    const modern = tlsAgent([first.ca]);
    expect((await getOn(modern, gw.port)).status).toBe(200);
    modern.destroy();
    expect((await peerCertificate(gw.port, [first.ca], ['h2', 'http/1.1'])).alpn).not.toBe('h2');
    expect(gw.output()).toContain('"protocol":"https"');
  } finally {
    expect(await gw.stop()).toBe(0);
  }
});

describe('bad TLS settings at startup: exit 2, one line naming the setting', () => {
  const cases: Array<[string, () => Record<string, string>, string, RegExp]> = [
    ['a missing certificate file', () => ({ TLS_CERT_FILE: path.join(root, 'nope.pem'), TLS_KEY_FILE: first.key }), 'TLS_CERT_FILE', /cannot read .*nope\.pem: ENOENT/],
    ['an unreadable key file', () => ({ TLS_CERT_FILE: first.cert, TLS_KEY_FILE: root }), 'TLS_KEY_FILE', /cannot read .*: EISDIR/],
    ['a certificate file that is not PEM', () => ({ TLS_CERT_FILE: first.ca.replace('ca.pem', 'server.ext'), TLS_KEY_FILE: first.key }), 'TLS_CERT_FILE', /holds no PEM certificate/],
    ['a mismatched pair', () => ({ TLS_CERT_FILE: first.cert, TLS_KEY_FILE: second.key }), 'TLS_KEY_FILE', /does not belong to the certificate/],
    ['the certificate without the key', () => ({ TLS_CERT_FILE: first.cert }), 'TLS_KEY_FILE', /both or neither/],
    ['an unknown TLS_MIN_VERSION', () => ({ TLS_CERT_FILE: first.cert, TLS_KEY_FILE: first.key, TLS_MIN_VERSION: 'TLSv1.1' }), 'TLS_MIN_VERSION', /TLSv1\.1/],
  ];
  test.each(cases)('%s', async (_what, env, setting, detail) => {
    const r = await runGatewayToExit({ env: { UPSTREAM_URL: upstream.url, ...env() } });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.any(String) });
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(setting);
    expect(lines[0]).toMatch(detail);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/^ {4}at /m);
  });
});
