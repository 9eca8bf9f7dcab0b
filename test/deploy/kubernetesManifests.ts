// deploy/kubernetes/ read into typed objects (the kubernetes-models types), with the
// lookups the manifest checks and the pod run locally need: the gateway's container, its
// settings, where a file path inside the pod comes from, the keys of Secrets and ConfigMaps.
import { readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { ConfigMap, type IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret, type ISecret } from 'kubernetes-models/v1/Secret';
import { Service, type IService } from 'kubernetes-models/v1/Service';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { HorizontalPodAutoscaler, type IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { schema } from '../../src/config/schema';

export const ROOT = resolve(__dirname, '..', '..');
export const DIR = join(ROOT, 'deploy', 'kubernetes');

export type Dict = Record<string, unknown>;
export const isDict = (value: unknown): value is Dict => typeof value === 'object' && value !== null && !Array.isArray(value);

export interface Manifest {
  file: string;
  doc: Dict;
}

export const kustomization = parse(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as Dict;
export const manifestFiles = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();
export const manifests: Manifest[] = manifestFiles.flatMap((file) =>
  parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0].message}`);
    const doc: unknown = d.toJS();
    if (!isDict(doc)) throw new Error(`${file}: a document that is not a mapping`);
    return { file, doc };
  }),
);
export const docs = manifests.map((m) => m.doc);
export const where = (doc: Dict): string => {
  const meta = isDict(doc.metadata) ? doc.metadata : {};
  return `${String(doc.kind)}/${String(meta.name)}`;
};

export const deployments = docs.filter((d): d is Dict & IDeployment => Deployment.is(d));
export const services = docs.filter((d): d is Dict & IService => Service.is(d));
export const configMaps = docs.filter((d): d is Dict & IConfigMap => ConfigMap.is(d));
export const secrets = docs.filter((d): d is Dict & ISecret => Secret.is(d));
export const pdbs = docs.filter((d): d is Dict & IPodDisruptionBudget => PodDisruptionBudget.is(d));
export const hpas = docs.filter((d): d is Dict & IHorizontalPodAutoscaler => HorizontalPodAutoscaler.is(d));

export function podSpec(d: IDeployment): IPodSpec {
  const spec = d.spec?.template.spec;
  if (!spec) throw new Error(`${d.metadata?.name}: no pod spec`);
  return spec;
}

export const podLabels = (d: IDeployment): Record<string, string> => d.spec?.template.metadata?.labels ?? {};

/** matchLabels selection; matchExpressions are not used here, so refuse them. */
export function selects(selector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } | Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  let match: Record<string, string>;
  if ('matchLabels' in selector || 'matchExpressions' in selector) {
    const s = selector as { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
    if (s.matchExpressions?.length) throw new Error('matchExpressions are not checked by this test');
    match = s.matchLabels ?? {};
  } else {
    match = selector as Record<string, string>;
  }
  return Object.keys(match).length > 0 && Object.entries(match).every(([k, v]) => labels[k] === v);
}

/** The container that runs the gateway: the tollgate image with dist/main.js. */
export function isGateway(c: IContainer): boolean {
  return [...(c.command ?? []), ...(c.args ?? [])].includes('dist/main.js');
}

export const gatewayDeployments = deployments.filter((d) => podSpec(d).containers.some(isGateway));
export const gatewayDeployment = (): IDeployment => {
  if (gatewayDeployments.length !== 1) throw new Error(`${gatewayDeployments.length} Deployments run dist/main.js; expected 1`);
  return gatewayDeployments[0];
};
export const gatewayContainer = (): IContainer => {
  const c = podSpec(gatewayDeployment()).containers.find(isGateway);
  if (!c) throw new Error('no gateway container');
  return c;
};

/** A plain `value` env var of the container, or undefined. */
export const envValue = (c: IContainer, name: string): string | undefined => c.env?.find((e) => e.name === name)?.value;

/** The setting the gateway runs with: the container's env, else the schema's default. */
export function setting(c: IContainer, name: string): string {
  const fromEnv = envValue(c, name);
  if (fromEnv !== undefined) return fromEnv;
  const entry = Object.values(schema).find((s) => s.env === name);
  if (!entry) throw new Error(`${name} is not a setting`);
  return String(entry.default);
}

/** A probe's or Service's port, named or numeric, as the container's port number. */
export function containerPort(c: IContainer, port: number | string | undefined): number {
  if (typeof port === 'number') return port;
  const found = c.ports?.find((p) => p.name === port);
  if (!found) throw new Error(`container ${c.name} has no port named ${String(port)}`);
  return found.containerPort;
}

export function allContainers(spec: IPodSpec): IContainer[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/** Keys a ConfigMap or Secret provides. */
export function keysOf(kind: 'ConfigMap' | 'Secret', name: string): string[] | null {
  if (kind === 'ConfigMap') {
    const cm = configMaps.find((c) => c.metadata?.name === name);
    return cm ? [...Object.keys(cm.data ?? {}), ...Object.keys(cm.binaryData ?? {})] : null;
  }
  const s = secrets.find((c) => c.metadata?.name === name);
  return s ? [...Object.keys(s.data ?? {}), ...Object.keys(s.stringData ?? {})] : null;
}

export function secretValue(name: string, key: string): string {
  const s = secrets.find((c) => c.metadata?.name === name);
  const plain = s?.stringData?.[key];
  if (plain !== undefined) return plain;
  const encoded = s?.data?.[key];
  if (encoded === undefined) throw new Error(`Secret ${name} has no key ${key}`);
  return Buffer.from(encoded, 'base64').toString('utf8');
}

/** Where a file path inside the container comes from: the volume mounted at its directory and the key. */
export function fileSource(spec: IPodSpec, c: IContainer, file: string): { kind: 'ConfigMap' | 'Secret'; name: string; key: string } {
  const mount = c.volumeMounts?.find((m) => m.mountPath.replace(/\/$/, '') === dirname(file));
  if (!mount) throw new Error(`${file}: no volume mounted at ${dirname(file)}`);
  if (mount.subPath !== undefined) throw new Error(`${file}: mounted with subPath, which never sees an update`);
  const volume = spec.volumes?.find((v) => v.name === mount.name);
  const source = volume?.configMap
    ? { kind: 'ConfigMap' as const, name: volume.configMap.name ?? '', items: volume.configMap.items }
    : volume?.secret
      ? { kind: 'Secret' as const, name: volume.secret.secretName ?? '', items: volume.secret.items }
      : null;
  if (!source) throw new Error(`${file}: volume ${mount.name} is not a ConfigMap or Secret`);
  const item = source.items ? source.items.find((i) => i.path === basename(file)) : { key: basename(file) };
  if (!item) throw new Error(`${file}: no item of volume ${mount.name} has path ${basename(file)}`);
  return { kind: source.kind, name: source.name, key: item.key };
}

function objectData(kind: 'ConfigMap' | 'Secret', name: string): Record<string, string> {
  if (kind === 'ConfigMap') {
    const cm = configMaps.find((c) => c.metadata?.name === name);
    if (!cm) throw new Error(`no ConfigMap ${name}`);
    return { ...cm.data };
  }
  const keys = keysOf('Secret', name);
  if (!keys) throw new Error(`no Secret ${name}`);
  return Object.fromEntries(keys.map((k) => [k, secretValue(name, k)]));
}

/** The files of a ConfigMap or Secret volume, by their path inside the mount (items applied), and their mode. */
export function volumeFiles(volume: IVolume): { files: Record<string, string>; mode: number } {
  const source = volume.configMap
    ? { kind: 'ConfigMap' as const, name: volume.configMap.name ?? '', items: volume.configMap.items, mode: volume.configMap.defaultMode }
    : volume.secret
      ? { kind: 'Secret' as const, name: volume.secret.secretName ?? '', items: volume.secret.items, mode: volume.secret.defaultMode }
      : null;
  if (!source) throw new Error(`volume ${volume.name} is not a ConfigMap or Secret`);
  const data = objectData(source.kind, source.name);
  const items = source.items ?? Object.keys(data).map((key) => ({ key, path: key }));
  return { files: Object.fromEntries(items.map((i) => [i.path, data[i.key]])), mode: source.mode ?? 0o644 };
}

/** The value of a container's env var as the kubelet resolves it (a plain value or a Secret/ConfigMap key). */
export function resolvedEnv(c: IContainer): Record<string, string> {
  return Object.fromEntries((c.env ?? []).map((e) => {
    const secret = e.valueFrom?.secretKeyRef;
    const cm = e.valueFrom?.configMapKeyRef;
    if (secret) return [e.name, secretValue(secret.name ?? '', secret.key)];
    if (cm) return [e.name, objectData('ConfigMap', cm.name ?? '')[cm.key]];
    if (e.valueFrom) throw new Error(`${e.name}: valueFrom other than a Secret or ConfigMap key`);
    return [e.name, e.value ?? ''];
  }));
}
