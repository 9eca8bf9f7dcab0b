// deploy/kubernetes/: every manifest validated against the Kubernetes API schemas
// (kubernetes-models, generated from the API's OpenAPI definitions) with unknown fields
// refused as `kubectl apply --validate=strict` would, and the invariants a cluster would
// only reveal at run time: probes on the admin port, the security context, resources,
// references to Secrets and ConfigMaps that exist with the keys used, settings that are
// real tollgate settings, the image that docker-compose.yml builds, selectors that select.
// test/e2e/kubernetes-pod.e2e.test.ts runs the gateway container as the kubelet would.
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service, type IService } from 'kubernetes-models/v1/Service';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { schema } from '../../src/config/schema';
import { parseTiers } from '../../src/limit/tiers';
import { parseRoutes } from '../../src/routes/routes';
import { requireBinary } from '../support/binaries';
import {
  ROOT, allContainers, configMaps, containerPort, deployments, docs, envValue, fileSource, gatewayContainer,
  gatewayDeployment, gatewayDeployments, hpas, isDict, keysOf, kustomization, manifestFiles, manifests, pdbs,
  podLabels, podSpec, secretValue, secrets, selects, services, setting, where, type Dict,
} from './kubernetesManifests';

// ---- schema validation ------------------------------------------------------------------

/** The model classes of the kinds this directory may hold, by apiVersion and kind. */
const MODELS: Record<string, { prototype: unknown }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
};

/**
 * Runs the kind's schema validation (throws with the schema errors) and returns the paths
 * of fields the schema does not know. kubernetes-models validates like the API server's
 * OpenAPI schema, which lets unknown fields through; the API server in Strict mode (the
 * default of `kubectl apply` since 1.27) refuses them, and a misspelt field such as
 * `readOnlyRootFileSystem` would otherwise pass silently. The compiled validator reads
 * every property its schema defines (and iterates maps), so a property it never read is
 * one the schema does not define.
 */
function validateStrict(doc: Dict): string[] {
  const model = MODELS[`${String(doc.apiVersion)}/${String(doc.kind)}`];
  if (!model) throw new Error(`${where(doc)}: no schema for apiVersion ${String(doc.apiVersion)} kind ${String(doc.kind)}`);
  const read = new Map<string, Set<string>>();
  const wrap = (value: unknown, path: string): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    const seen = read.get(path) ?? new Set<string>();
    read.set(path, seen);
    return new Proxy(value, {
      get(target, key, receiver) {
        const child: unknown = Reflect.get(target, key, receiver);
        if (typeof key !== 'string') return child;
        seen.add(key);
        return wrap(child, `${path}/${key}`);
      },
    });
  };
  (model.prototype as { validate(this: unknown): void }).validate.call(wrap(doc, ''));
  const unknown: string[] = [];
  const walk = (value: unknown, path: string): void => {
    if (typeof value !== 'object' || value === null) return;
    const seen = read.get(path);
    for (const key of Object.keys(value)) {
      if (!seen?.has(key)) unknown.push(`${path}/${key}`);
      else walk((value as Dict)[key], `${path}/${key}`);
    }
  };
  walk(doc, '');
  return unknown;
}

// ---- the tests --------------------------------------------------------------------------

describe('deploy/kubernetes/ against the Kubernetes API schemas', () => {
  it('holds the objects SPEC §11 lists', () => {
    const kinds = docs.map((d) => `${String(d.apiVersion)}/${String(d.kind)}`);
    for (const kind of ['apps/v1/Deployment', 'v1/Service', 'v1/ConfigMap', 'v1/Secret', 'policy/v1/PodDisruptionBudget', 'autoscaling/v2/HorizontalPodAutoscaler']) {
      expect(kinds).toContain(kind);
    }
  });

  it.each(manifests.map((m) => [`${m.file}: ${where(m.doc)}`, m.doc] as const))('%s is valid, with no field the schema does not know', (_name, doc) => {
    expect(validateStrict(doc)).toEqual([]);
  });

  it('the schema check refuses what the API server would (so the test above can fail)', () => {
    const gateway = structuredClone(gatewayDeployments[0]) as Dict & IDeployment;
    const container = podSpec(gateway).containers[0] as IContainer & Dict;
    container.securityContext = { ...container.securityContext, readOnlyRootFileSystem: true } as IContainer['securityContext'];
    expect(validateStrict(gateway)).toEqual(['/spec/template/spec/containers/0/securityContext/readOnlyRootFileSystem']);
    container.ports = [{ containerPort: 'http' as unknown as number }];
    expect(() => validateStrict(gateway)).toThrow(/containerPort must be integer/);
  });

  it('every manifest is in kustomization.yaml and every resource listed exists', () => {
    expect(kustomization.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
    expect(kustomization.kind).toBe('Kustomization');
    expect([...(kustomization.resources as string[])].sort()).toEqual(manifestFiles);
  });

  it('no object sets a namespace of its own (kustomization.yaml sets one for all)', () => {
    expect(typeof kustomization.namespace).toBe('string');
    const namespaced = docs.filter((d) => d.kind !== 'Namespace' && isDict(d.metadata) && 'namespace' in d.metadata);
    expect(namespaced.map(where)).toEqual([]);
    expect(docs.filter((d) => d.kind === 'Namespace').map((d) => (d.metadata as Dict).name)).toEqual([kustomization.namespace]);
  });
});

describe('the gateway Deployment', () => {
  it('runs three replicas of the image docker-compose.yml builds', () => {
    const d = gatewayDeployment();
    expect(d.spec?.replicas).toBe(3);
    const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { image?: string }> };
    const image = compose.services.gateway.image;
    expect(image).toMatch(/^tollgate:/);
    expect(gatewayContainer().image).toBe(image);
    // The documented build command tags the same image.
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toContain(`docker build -t ${image} .`);
    // A locally built tag cannot be pulled: the kubelet must use the node's copy.
    expect(gatewayContainer().imagePullPolicy).toBe('IfNotPresent');
  });

  it('selects its own pods', () => {
    for (const d of deployments) expect(selects(d.spec?.selector, podLabels(d))).toBe(true);
  });

  it('probes /livez (liveness, startup) and /readyz (readiness) on the admin port, not the proxy port', () => {
    const c = gatewayContainer();
    const adminPort = Number(setting(c, 'ADMIN_PORT'));
    const proxyPort = Number(setting(c, 'PORT'));
    expect(adminPort).not.toBe(proxyPort);
    const probe = (p: IProbe | undefined) => ({ path: p?.httpGet?.path, port: containerPort(c, p?.httpGet?.port) });
    expect(probe(c.livenessProbe)).toEqual({ path: '/livez', port: adminPort });
    expect(probe(c.readinessProbe)).toEqual({ path: '/readyz', port: adminPort });
    expect(probe(c.startupProbe)).toEqual({ path: '/livez', port: adminPort });
    expect(c.ports?.map((p) => p.containerPort).sort()).toEqual([proxyPort, adminPort].sort());
  });

  it('binds the admin port beyond loopback for the probes, so ADMIN_TOKEN comes from a Secret (SPEC §1)', () => {
    const c = gatewayContainer();
    expect(envValue(c, 'ADMIN_HOST')).toBe('0.0.0.0');
    const token = c.env?.find((e) => e.name === 'ADMIN_TOKEN')?.valueFrom?.secretKeyRef;
    expect(token).toBeDefined();
    expect(secretValue(token?.name ?? '', token?.key ?? '').length).toBeGreaterThan(0);
  });

  it('sets only real tollgate settings, and no Service links that look like settings', () => {
    const settings = new Set(Object.values(schema).map((s) => s.env));
    const c = gatewayContainer();
    const names = (c.env ?? []).map((e) => e.name);
    expect(names.filter((n) => !settings.has(n))).toEqual([]);
    expect(c.envFrom ?? []).toEqual([]);
    // Service links would add e.g. REDIS_PORT=tcp://… for the `redis` Service.
    expect(podSpec(gatewayDeployment()).enableServiceLinks).toBe(false);
  });

  it('reads the tiers, the routes and the TLS pair from a mounted ConfigMap and Secret directory', () => {
    const spec = podSpec(gatewayDeployment());
    const c = gatewayContainer();
    const sources = Object.fromEntries(['TIERS_FILE', 'ROUTES_FILE', 'TLS_CERT_FILE', 'TLS_KEY_FILE'].map((name) => {
      const file = envValue(c, name);
      if (!file) throw new Error(`${name} is not set`);
      return [name, fileSource(spec, c, file)];
    }));
    expect(sources.TIERS_FILE.kind).toBe('ConfigMap');
    expect(sources.ROUTES_FILE).toEqual({ ...sources.TIERS_FILE, key: 'routes.json' });
    expect(sources.TLS_CERT_FILE.kind).toBe('Secret');
    expect(sources.TLS_KEY_FILE.name).toBe(sources.TLS_CERT_FILE.name);
    for (const source of Object.values(sources)) expect(keysOf(source.kind, source.name)).toContain(source.key);
  });

  it('does not load the demo keys the image ships', () => {
    expect(envValue(gatewayContainer(), 'KEYS_FILE')).toBe('');
  });

  it('has its metrics scraped on the admin port', () => {
    const annotations = gatewayDeployment().spec?.template.metadata?.annotations ?? {};
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(Number(annotations['prometheus.io/port'])).toBe(Number(setting(gatewayContainer(), 'ADMIN_PORT')));
    expect(annotations['prometheus.io/path']).toBe('/metrics');
  });

  it('gives the drain time to finish before the kubelet kills the pod', () => {
    const c = gatewayContainer();
    const preStop = c.lifecycle?.preStop?.exec?.command ?? [];
    const sleep = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
    const drain = Number(setting(c, 'SHUTDOWN_TIMEOUT_MS')) / 1000;
    expect(podSpec(gatewayDeployment()).terminationGracePeriodSeconds).toBeGreaterThan(sleep + drain);
  });

  it('keeps every wanted replica through a rollout', () => {
    expect(gatewayDeployment().spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
  });
});

describe('every workload', () => {
  const containers = deployments.flatMap((d) => allContainers(podSpec(d)).map((c) => [`${d.metadata?.name}/${c.name}`, d, c] as const));

  it.each(containers)('%s runs as a non-root user with a read-only root and no privileges', (_name, d, c) => {
    const pod = podSpec(d).securityContext ?? {};
    const own = c.securityContext ?? {};
    expect(own.runAsNonRoot ?? pod.runAsNonRoot).toBe(true);
    // Numeric: the kubelet can verify runAsNonRoot only against a numeric user.
    expect(own.runAsUser ?? pod.runAsUser).toBeGreaterThan(0);
    expect(own.allowPrivilegeEscalation).toBe(false);
    expect(own.readOnlyRootFilesystem).toBe(true);
    expect(own.privileged ?? false).toBe(false);
    expect(own.capabilities?.drop).toContain('ALL');
    expect(own.capabilities?.add ?? []).toEqual([]);
    expect((own.seccompProfile ?? pod.seccompProfile)?.type).toBe('RuntimeDefault');
    expect(podSpec(d).automountServiceAccountToken).toBe(false);
  });

  it.each(containers)('%s writes only to emptyDir volumes and mounts its configuration read-only', (_name, d, c) => {
    const volumes = podSpec(d).volumes ?? [];
    for (const mount of c.volumeMounts ?? []) {
      const volume = volumes.find((v) => v.name === mount.name);
      expect(volume).toBeDefined();
      if (!volume?.emptyDir) expect(mount.readOnly).toBe(true);
    }
  });

  it.each(containers)('%s sets CPU and memory requests and limits, requests within limits', (_name, _d, c) => {
    const quantity = (q: string | number | undefined): number => {
      if (q === undefined) throw new Error('missing quantity');
      const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$/.exec(String(q));
      if (!m) throw new Error(`unparsed quantity ${q}`);
      const scale: Record<string, number> = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 };
      return Number(m[1]) * (m[2] ? scale[m[2]] : 1);
    };
    for (const resource of ['cpu', 'memory']) {
      expect(quantity(c.resources?.requests?.[resource])).toBeLessThanOrEqual(quantity(c.resources?.limits?.[resource]));
    }
  });

  it.each(containers)('%s probes its readiness', (_name, _d, c) => {
    expect(c.readinessProbe).toBeDefined();
  });

  it('every Secret and ConfigMap referenced exists in the directory with the referenced keys', () => {
    const missing: string[] = [];
    const need = (kind: 'ConfigMap' | 'Secret', name: string | undefined, keys: string[], from: string) => {
      const have = keysOf(kind, name ?? '');
      if (!have) missing.push(`${from}: ${kind} ${name} does not exist`);
      else for (const k of keys) if (!have.includes(k)) missing.push(`${from}: ${kind} ${name} has no key ${k}`);
    };
    let references = 0;
    for (const d of deployments) {
      const spec = podSpec(d);
      for (const v of spec.volumes ?? []) {
        if (v.configMap) need('ConfigMap', v.configMap.name, (v.configMap.items ?? []).map((i) => i.key), `${d.metadata?.name} volume ${v.name}`);
        if (v.secret) need('Secret', v.secret.secretName, (v.secret.items ?? []).map((i) => i.key), `${d.metadata?.name} volume ${v.name}`);
        if (v.configMap || v.secret) references++;
      }
      for (const c of allContainers(spec)) {
        for (const e of c.env ?? []) {
          const cm = e.valueFrom?.configMapKeyRef;
          const s = e.valueFrom?.secretKeyRef;
          if (cm) need('ConfigMap', cm.name, [cm.key], `${c.name} env ${e.name}`);
          if (s) need('Secret', s.name, [s.key], `${c.name} env ${e.name}`);
          if (cm || s) references++;
        }
        for (const e of c.envFrom ?? []) {
          if (e.configMapRef) need('ConfigMap', e.configMapRef.name, [], `${c.name} envFrom`);
          if (e.secretRef) need('Secret', e.secretRef.name, [], `${c.name} envFrom`);
          references++;
        }
      }
    }
    expect(missing).toEqual([]);
    expect(references).toBeGreaterThanOrEqual(3); // config, TLS, ADMIN_TOKEN
  });
});

describe('Services, PodDisruptionBudget, HorizontalPodAutoscaler', () => {
  it('every Service selects the pods of one Deployment, on ports those pods have', () => {
    for (const s of services) {
      const targets = deployments.filter((d) => selects(s.spec?.selector, podLabels(d)));
      expect({ service: s.metadata?.name, deployments: targets.length }).toEqual({ service: s.metadata?.name, deployments: 1 });
      const containers = podSpec(targets[0]).containers;
      for (const p of s.spec?.ports ?? []) {
        const target = p.targetPort ?? p.port;
        expect(containers.some((c) => c.ports?.some((cp) => cp.containerPort === target || cp.name === target))).toBe(true);
      }
    }
  });

  it('the proxy port is public; the admin port only reaches the cluster', () => {
    const c = gatewayContainer();
    const adminPort = Number(setting(c, 'ADMIN_PORT'));
    const proxyPort = Number(setting(c, 'PORT'));
    const gatewayServices = services.filter((s) => selects(s.spec?.selector, podLabels(gatewayDeployment())));
    const exposes = (s: IService, port: number) => (s.spec?.ports ?? []).some((p) => containerPort(c, p.targetPort ?? p.port) === port);
    const external = gatewayServices.filter((s) => s.spec?.type === 'LoadBalancer' || s.spec?.type === 'NodePort');
    expect(external.length).toBeGreaterThan(0);
    for (const s of external) {
      expect(exposes(s, proxyPort)).toBe(true);
      expect(exposes(s, adminPort)).toBe(false);
    }
    const admin = gatewayServices.filter((s) => exposes(s, adminPort));
    expect(admin.length).toBeGreaterThan(0);
    for (const s of admin) expect(s.spec?.type ?? 'ClusterIP').toBe('ClusterIP');
  });

  it('the PodDisruptionBudget selects the gateway pods and lets a drain proceed', () => {
    expect(pdbs).toHaveLength(1);
    const pdb = pdbs[0];
    expect(selects(pdb.spec?.selector, podLabels(gatewayDeployment()))).toBe(true);
    const replicas = gatewayDeployment().spec?.replicas ?? 1;
    const { maxUnavailable, minAvailable } = pdb.spec ?? {};
    if (maxUnavailable !== undefined) expect(Number(maxUnavailable)).toBeGreaterThanOrEqual(1);
    else expect(Number(minAvailable)).toBeLessThan(replicas);
  });

  it('the HPA scales the gateway Deployment on CPU, from at least its replica count', () => {
    expect(hpas).toHaveLength(1);
    const spec = hpas[0].spec;
    if (!spec) throw new Error('HPA without spec');
    expect(spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: gatewayDeployment().metadata?.name });
    const cpu = spec.metrics?.find((m) => m.type === 'Resource' && m.resource?.name === 'cpu');
    expect(cpu?.resource?.target.type).toBe('Utilization');
    expect(spec.minReplicas).toBeGreaterThanOrEqual(gatewayDeployment().spec?.replicas ?? 1);
    expect(spec.maxReplicas).toBeGreaterThan(spec.minReplicas ?? 1);
    // Utilization is a share of the request: without one the HPA cannot compute it.
    expect(gatewayContainer().resources?.requests?.cpu).toBeDefined();
  });

  it('REDIS_URL names the Redis Service in the directory', () => {
    const url = new URL(envValue(gatewayContainer(), 'REDIS_URL') ?? '');
    const redis = services.find((s) => s.metadata?.name === url.hostname);
    expect(redis?.spec?.ports?.map((p) => p.port)).toContain(Number(url.port || 6379));
  });
});

describe('the ConfigMap and Secrets', () => {
  const configKey = (key: string): string => {
    const c = gatewayContainer();
    const source = fileSource(podSpec(gatewayDeployment()), c, envValue(c, key) ?? '');
    const value = configMaps.find((cm) => cm.metadata?.name === source.name)?.data?.[source.key];
    if (value === undefined) throw new Error(`${key}: no data`);
    return value;
  };

  it('tiers.json is a valid tiers file, the shipped config/tiers.json (change both together)', () => {
    const parsed = parseTiers(JSON.parse(configKey('TIERS_FILE')));
    if (!parsed.ok) throw new Error(parsed.reasons.join('; '));
    const shipped: unknown = JSON.parse(readFileSync(join(ROOT, 'config', 'tiers.json'), 'utf8'));
    expect(JSON.parse(configKey('TIERS_FILE'))).toEqual(shipped);
  });

  it('routes.json is a valid routes file for those tiers, the shipped config/routes.json (change both together)', () => {
    const tiers = parseTiers(JSON.parse(configKey('TIERS_FILE')));
    if (!tiers.ok) throw new Error(tiers.reasons.join('; '));
    const routes = parseRoutes(JSON.parse(configKey('ROUTES_FILE')), new Set(tiers.tiers.tiers.keys()));
    if (!routes.ok) throw new Error(routes.reasons.join('; '));
    const shipped: unknown = JSON.parse(readFileSync(join(ROOT, 'config', 'routes.json'), 'utf8'));
    expect(JSON.parse(configKey('ROUTES_FILE'))).toEqual(shipped);
  });

  it('the TLS Secret holds a matching certificate and key, valid now, for the Service names', () => {
    const c = gatewayContainer();
    const spec = podSpec(gatewayDeployment());
    const cert = fileSource(spec, c, envValue(c, 'TLS_CERT_FILE') ?? '');
    const key = fileSource(spec, c, envValue(c, 'TLS_KEY_FILE') ?? '');
    expect(secrets.find((s) => s.metadata?.name === cert.name)?.type).toBe('kubernetes.io/tls');
    const x509 = new X509Certificate(secretValue(cert.name, cert.key));
    expect(x509.checkPrivateKey(createPrivateKey(secretValue(key.name, key.key)))).toBe(true);
    const now = Date.now();
    expect(new Date(x509.validFrom).getTime()).toBeLessThan(now);
    expect(new Date(x509.validTo).getTime()).toBeGreaterThan(now + 365 * 86_400_000);
    const publicService = services.find((s) => s.spec?.type === 'LoadBalancer');
    const host = `${publicService?.metadata?.name}.${String(kustomization.namespace)}.svc`;
    expect(x509.checkHost(host)).toBe(host);
    expect(x509.checkHost('localhost')).toBe('localhost');
  });
});

interface RelabelRule {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  action?: string;
  replacement?: string;
  target_label?: string;
}

/** Prometheus's `keep` and `replace` relabelling (the only actions the job uses); null when dropped. */
function relabel(labels: Record<string, string>, rules: RelabelRule[]): Record<string, string> | null {
  const out = { ...labels };
  for (const rule of rules) {
    const value = (rule.source_labels ?? []).map((l) => out[l] ?? '').join(rule.separator ?? ';');
    const match = new RegExp(`^(?:${rule.regex ?? '(.*)'})$`).exec(value);
    const action = rule.action ?? 'replace';
    if (action === 'keep') {
      if (!match) return null;
    } else if (action === 'replace') {
      if (match && rule.target_label) out[rule.target_label] = (rule.replacement ?? '$1').replace(/\$\{?(\d+)\}?/g, (_, n: string) => match[Number(n)] ?? '');
    } else {
      throw new Error(`relabel action ${action} is not modelled here`);
    }
  }
  return out;
}

describe('the Prometheus scrape job in docs/kubernetes.md', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'kubernetes.md'), 'utf8');
  const block = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]).find((y) => y.includes('scrape_configs:'));
  type Job = { job_name: string; kubernetes_sd_configs?: unknown; static_configs?: unknown; relabel_configs: RelabelRule[] };
  const config = (): { scrape_configs: Job[] } => {
    if (!block) throw new Error('no scrape_configs block in docs/kubernetes.md');
    return parse(block) as { scrape_configs: Job[] };
  };

  it('is a valid Prometheus configuration (promtool check config)', () => {
    // Debian's Prometheus is built without Kubernetes discovery, so promtool checks the job
    // with its pod discovery replaced by a static target: everything else as written.
    const job = config().scrape_configs[0];
    expect(job.kubernetes_sd_configs).toEqual([{ role: 'pod', namespaces: { names: [kustomization.namespace] } }]);
    const checkable = { scrape_configs: [{ ...job, kubernetes_sd_configs: undefined, static_configs: [{ targets: ['10.0.0.5:8080'] }] }] };
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-k8s-prom-'));
    try {
      writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(checkable));
      const result = spawnSync(requireBinary('promtool', 'prometheus'), ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8', timeout: 20_000 });
      expect({ status: result.status, output: `${result.stdout}${result.stderr}` }).toEqual({ status: 0, output: expect.stringContaining('SUCCESS') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('turns a gateway pod into a scrape of its admin port\'s /metrics, as the job TollgateDown watches', () => {
    const job = config().scrape_configs[0];
    expect(job.job_name).toBe('tollgate');
    expect(readFileSync(join(ROOT, 'observability', 'alerts.yml'), 'utf8')).toContain(`up{job="${job.job_name}"}`);
    // The labels Kubernetes discovery gives a pod: each annotation, its name made a label name.
    const pod = (annotations: Record<string, string>): Record<string, string> => ({
      __address__: `10.0.0.5:${setting(gatewayContainer(), 'PORT')}`,
      __metrics_path__: '/metrics',
      __meta_kubernetes_pod_name: 'tollgate-7d9f-abcde',
      ...Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`__meta_kubernetes_pod_annotation_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`, v])),
    });
    const annotations = gatewayDeployment().spec?.template.metadata?.annotations ?? {};
    const target = relabel(pod(annotations), job.relabel_configs);
    expect(target).toMatchObject({
      __address__: `10.0.0.5:${setting(gatewayContainer(), 'ADMIN_PORT')}`,
      __metrics_path__: '/metrics',
      instance: 'tollgate-7d9f-abcde',
    });
    // A pod without the annotation (Redis, the demo upstream) is not scraped.
    expect(relabel(pod({}), job.relabel_configs)).toBeNull();
  });
});
