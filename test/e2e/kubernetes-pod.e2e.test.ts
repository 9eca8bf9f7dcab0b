import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  gatewayContainer, gatewayDeployment, kustomization, podSpec, resolvedEnv, services, volumeFiles,
} from '../deploy/kubernetesManifests';
import { makeCerts } from '../support/certs';
import { startGateway, type GatewayProcess } from '../support/gateway';
import { httpRequest, type HttpResult } from '../support/http';
import { kubeletVolume, type KubeletVolume } from '../support/kubeletVolume';
import { waitFor } from '../support/processes';
import { startRedis, type RedisServer } from '../support/redis';
import { fileFingerprint, peerCertificate, tlsAgent } from '../support/tlsClient';
import { startUpstream, type Upstream } from '../support/upstream';

/*
 * The gateway container of deploy/kubernetes/deployment.yaml, run as the kubelet runs it:
 * its environment as written (Secret keys resolved), its ConfigMap and Secret volumes laid
 * out as the kubelet mounts them (`..data` symlink swaps on update) under a temp directory
 * standing in for the pod's root. Only what a cluster would provide differs: Redis, the
 * upstream and the ports (free ones) are the test's own.
 */

const container = gatewayContainer();
const spec = podSpec(gatewayDeployment());
/** The names clients reach the public Service by, which the shipped certificate covers. */
const serviceHost = `${services.find((s) => s.spec?.type === 'LoadBalancer')?.metadata?.name}.${String(kustomization.namespace)}.svc`;

let redis: RedisServer;
let upstream: Upstream;
let root: string;
let gw: GatewayProcess;
const volumes = new Map<string, KubeletVolume>();

/** The pod's path for a file, under the temp root when it lies in a mounted volume. */
function podPath(file: string): string {
  const inMount = (container.volumeMounts ?? []).some((m) => file.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
  return inMount ? path.join(root, file) : file;
}

beforeAll(async () => {
  [redis, upstream] = await Promise.all([startRedis(), startUpstream()]);
  root = mkdtempSync(path.join(tmpdir(), 'tollgate-pod-'));
  for (const mount of container.volumeMounts ?? []) {
    const volume = spec.volumes?.find((v) => v.name === mount.name);
    if (!volume) throw new Error(`no volume ${mount.name}`);
    if (volume.emptyDir) {
      mkdirSync(path.join(root, mount.mountPath), { recursive: true });
      continue;
    }
    const { files, mode } = volumeFiles(volume);
    volumes.set(mount.mountPath, kubeletVolume(path.join(root, mount.mountPath), files, mode));
  }
  const env = Object.fromEntries(Object.entries(resolvedEnv(container)).map(([name, value]) => [name, value.startsWith('/') ? podPath(value) : value]));
  gw = await startGateway({ env: { ...env, REDIS_URL: redis.url, UPSTREAM_URL: upstream.url } });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await Promise.all([redis?.stop(), upstream?.close()]);
  if (root) rmSync(root, { recursive: true, force: true });
});

const volumeOf = (envName: string): KubeletVolume => {
  const file = resolvedEnv(container)[envName];
  const volume = volumes.get(path.dirname(file));
  if (!volume) throw new Error(`${envName} (${file}) is not in a mounted volume`);
  return volume;
};
const adminToken = (): string => resolvedEnv(container).ADMIN_TOKEN;
const certFile = (): string => volumeOf('TLS_CERT_FILE').file(path.basename(resolvedEnv(container).TLS_CERT_FILE));

/** One GET over a new TLS connection that trusts `caFile` and asks for `servername`. */
function httpsGet(pathname: string, headers: Record<string, string>, caFile: string, servername: string): Promise<HttpResult> {
  return httpRequest(`https://127.0.0.1:${gw.port}${pathname}`, { headers, agent: tlsAgent([caFile], { keepAlive: false, servername }), timeoutMs: 10_000 });
}

async function createKey(tier: string): Promise<string> {
  const r = await httpRequest(`${gw.adminUrl}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tier, name: 'k8s-pod-test' }),
  });
  expect(r.status).toBe(201);
  return r.json<{ key: string }>().key;
}

test('the kubelet\'s probes answer on the admin port: liveness, readiness and startup; Prometheus finds /metrics where the pod\'s annotations say', async () => {
  for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
    const r = await httpRequest(`${gw.adminUrl}${probe?.httpGet?.path ?? '/missing'}`);
    expect(r.status).toBe(200);
  }
  const annotations = gatewayDeployment().spec?.template.metadata?.annotations ?? {};
  const metrics = await httpRequest(`${gw.adminUrl}${annotations['prometheus.io/path']}`);
  expect(metrics.status).toBe(200);
  expect(metrics.body).toContain('tollgate_requests_total');
});

test('/admin/* takes the token from the Secret, and only that', async () => {
  const url = `${gw.adminUrl}/admin/health`;
  expect((await httpRequest(url)).status).toBe(401);
  expect((await httpRequest(url, { headers: { authorization: 'Bearer wrong-token' } })).status).toBe(401);
  expect((await httpRequest(url, { headers: { authorization: `Bearer ${adminToken()}` } })).status).toBe(200);
});

test('the proxy port speaks HTTPS with the Secret\'s certificate for the Service name and offers h2; the ConfigMap\'s tiers apply; the image\'s demo keys are not loaded', async () => {
  const ca = certFile();
  expect((await peerCertificate(gw.port, [ca], ['h2', 'http/1.1'], 5000, serviceHost)).alpn).toBe('h2');
  const key = await createKey('pro');
  const ok = await httpsGet('/hello', { 'x-api-key': key }, ca, serviceHost);
  expect(ok.status).toBe(200);
  expect(ok.headers['x-ratelimit-limit']).toBe('150');
  const demo = await httpsGet('/hello', { 'x-api-key': 'demo_pro_key_789' }, ca, serviceHost);
  expect(demo.status).toBe(401);
  expect(demo.json()).toMatchObject({ error: 'invalid_api_key' });
});

test('a ConfigMap update (the kubelet\'s ..data swap) reaches the running gateway', async () => {
  const ca = certFile();
  const key = await createKey('pro');
  const tiersVolume = volumeOf('TIERS_FILE');
  const name = path.basename(resolvedEnv(container).TIERS_FILE);
  const tiers = JSON.parse(readFileSync(tiersVolume.file(name), 'utf8')) as { tiers: Record<string, Record<string, unknown>> };
  tiers.tiers.pro = { ...tiers.tiers.pro, burst: 120 };
  tiersVolume.update({ [name]: JSON.stringify(tiers) });
  await waitFor('the new pro burst in force', async () => (await httpsGet('/hello', { 'x-api-key': key }, ca, serviceHost)).headers['x-ratelimit-limit'] === '120', 10_000);
  await gw.waitForOutput('"event":"tiers.reloaded"');
});

test('a routes update in the ConfigMap reaches the running gateway: a route made keyless answers without a key', async () => {
  const ca = certFile();
  expect((await httpsGet('/status/ping', {}, ca, serviceHost)).status).toBe(401);
  const name = path.basename(resolvedEnv(container).ROUTES_FILE);
  volumeOf('ROUTES_FILE').update({ [name]: JSON.stringify({ routes: [{ name: 'status', match: { path: '/status/*' }, auth: 'none' }] }) });
  await waitFor('the keyless route in force', async () => (await httpsGet('/status/ping', {}, ca, serviceHost)).status === 200, 10_000);
});

test('a Secret update (certificate rotation) reaches new connections without a restart', async () => {
  const certs = await makeCerts(mkdtempSync(path.join(root, 'new-cert-')));
  const tlsVolume = volumeOf('TLS_CERT_FILE');
  const env = resolvedEnv(container);
  tlsVolume.update({
    [path.basename(env.TLS_CERT_FILE)]: readFileSync(certs.cert),
    [path.basename(env.TLS_KEY_FILE)]: readFileSync(certs.key),
  });
  await waitFor('the new certificate on a new connection', async () => (await peerCertificate(gw.port, [certs.ca])).fingerprint === fileFingerprint(certs.cert), 10_000);
  const key = await createKey('pro');
  expect((await httpsGet('/hello', { 'x-api-key': key }, certs.ca, 'localhost')).status).toBe(200);
});
