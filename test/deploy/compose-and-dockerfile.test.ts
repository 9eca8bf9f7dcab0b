// docker-compose.yml, Dockerfile and .dockerignore, checked as text (no Docker engine is
// needed): the services and their wiring, what is published where, and that everything
// the image build copies exists and is not excluded from the build context.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

const ROOT = resolve(__dirname, '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

type Dict = Record<string, unknown>;
const isDict = (value: unknown): value is Dict => typeof value === 'object' && value !== null && !Array.isArray(value);

function dict(value: unknown, what: string): Dict {
  if (!isDict(value)) throw new Error(`${what} is not a mapping`);
  return value;
}

// ---- compose helpers -----------------------------------------------------------------

const compose = dict(parse(read('docker-compose.yml')), 'docker-compose.yml');
const services = dict(compose.services, 'services');
const service = (name: string): Dict => dict(services[name], `service ${name}`);

/** `environment:` as a map, whether written as a map or as a `KEY=value` list. */
function environment(svc: Dict): Record<string, string> {
  const env = svc.environment;
  if (env === undefined) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry) => {
      const text = String(entry);
      const eq = text.indexOf('=');
      return eq === -1 ? [text, ''] : [text.slice(0, eq), text.slice(eq + 1)];
    }));
  }
  return Object.fromEntries(Object.entries(dict(env, 'environment')).map(([k, v]) => [k, String(v)]));
}

interface PublishedPort {
  hostIp: string;
  published: string;
  target: number;
}

/** Short (`[ip:][published:]target[/proto]`) and long port syntax, normalised. */
function publishedPorts(svc: Dict): PublishedPort[] {
  const ports = svc.ports;
  if (ports === undefined) return [];
  if (!Array.isArray(ports)) throw new Error('ports is not a list');
  return ports.map((entry: unknown): PublishedPort => {
    if (isDict(entry)) {
      return { hostIp: String(entry.host_ip ?? '0.0.0.0'), published: String(entry.published ?? ''), target: Number(entry.target) };
    }
    let text = String(entry).replace(/\/(tcp|udp|sctp)$/, '');
    let hostIp = '0.0.0.0';
    const ipv6 = /^\[([^\]]+)\]:(.*)$/.exec(text);
    if (ipv6) {
      hostIp = ipv6[1];
      text = ipv6[2];
    }
    const parts = text.split(':');
    if (parts.length === 3) {
      hostIp = parts[0];
      return { hostIp, published: parts[1], target: Number(parts[2]) };
    }
    if (parts.length === 2) return { hostIp, published: parts[0], target: Number(parts[1]) };
    return { hostIp, published: '', target: Number(parts[0]) };
  });
}

const isLoopback = (ip: string): boolean => ip === '127.0.0.1' || ip === '::1' || ip === 'localhost';

interface Mount {
  source: string;
  target: string;
}

function bindMounts(svc: Dict): Mount[] {
  const volumes = svc.volumes;
  if (!Array.isArray(volumes)) return [];
  return volumes.flatMap((entry: unknown): Mount[] => {
    if (isDict(entry)) return entry.type === 'bind' ? [{ source: String(entry.source), target: String(entry.target) }] : [];
    const [source, target] = String(entry).split(':');
    return source.startsWith('.') || source.startsWith('/') ? [{ source, target }] : [];
  });
}

/** The host path mounted at `target`, relative to the repo. */
function mountSourceFor(svc: Dict, target: string): string | undefined {
  return bindMounts(svc).find((mount) => mount.target === target)?.source;
}

function commandWords(svc: Dict): string[] {
  const command = svc.command;
  if (Array.isArray(command)) return command.map(String);
  if (typeof command === 'string') return command.split(/\s+/).filter(Boolean);
  return [];
}

// ---- Dockerfile helpers --------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions with comments dropped and `\` continuations joined. */
function dockerInstructions(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const continued = /\\\s*$/.test(raw);
    current += `${raw.replace(/\\\s*$/, '')} `;
    if (!continued) {
      if (current.trim()) logical.push(current.trim());
      current = '';
    }
  }
  if (current.trim()) logical.push(current.trim());
  return logical.map((line) => {
    const match = /^(\w+)\s+(.*)$/.exec(line);
    if (!match) throw new Error(`unparsable Dockerfile line: ${line}`);
    return { keyword: match[1].toUpperCase(), args: match[2].trim() };
  });
}

/** COPY/ADD arguments: flags apart, JSON array form understood. */
function copyArgs(args: string): { flags: Record<string, string>; sources: string[]; dest: string } {
  const flags: Record<string, string> = {};
  let rest = args;
  for (;;) {
    const flag = /^--([\w-]+)(?:=(\S+))?\s+/.exec(rest);
    if (!flag) break;
    flags[flag[1]] = flag[2] ?? 'true';
    rest = rest.slice(flag[0].length);
  }
  const words: string[] = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
  return { flags, sources: words.slice(0, -1), dest: words[words.length - 1] };
}

/** Go-style .dockerignore pattern → RegExp over context-relative paths. */
function ignoreRegExp(pattern: string): RegExp {
  const clean = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  let out = '';
  for (let i = 0; i < clean.length; i++) {
    const c = clean[i];
    if (c === '*' && clean[i + 1] === '*') {
      out += '.*';
      i += clean[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

function isIgnored(path: string, patterns: string[]): boolean {
  const segments = path.replace(/^\.\//, '').replace(/\/+$/, '').split('/');
  // A path is excluded when it or any directory above it matches (last match wins).
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const regexp = ignoreRegExp(negated ? raw.slice(1) : raw);
    for (let n = 1; n <= segments.length; n++) {
      if (regexp.test(segments.slice(0, n).join('/'))) {
        ignored = !negated;
        break;
      }
    }
  }
  return ignored;
}

const dockerfile = dockerInstructions(read('Dockerfile'));
const dockerignore = read('.dockerignore')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));

/** Stages in order, with the instructions that belong to each. */
function stages(): { name: string; base: string; instructions: Instruction[] }[] {
  const args = new Map<string, string>();
  const out: { name: string; base: string; instructions: Instruction[] }[] = [];
  for (const instruction of dockerfile) {
    if (instruction.keyword === 'ARG' && out.length === 0) {
      const [name, value = ''] = instruction.args.split('=');
      args.set(name, value);
    } else if (instruction.keyword === 'FROM') {
      const match = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (!match) throw new Error(`unparsable FROM ${instruction.args}`);
      const base = match[1].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => args.get(a ?? b ?? '') ?? '');
      out.push({ name: match[2] ?? String(out.length), base, instructions: [] });
    } else if (out.length > 0) {
      out[out.length - 1].instructions.push(instruction);
    }
  }
  return out;
}

// ---- the tests -----------------------------------------------------------------------

describe('docker-compose.yml', () => {
  it('has redis, upstream, gateway and nginx', () => {
    for (const name of ['redis', 'upstream', 'gateway', 'nginx']) expect(services).toHaveProperty(name);
    expect(service('redis').image).toMatch(/^redis:7/);
    expect(service('nginx').image).toMatch(/^nginx:1\.27/);
  });

  it('runs three gateway replicas on the shared Redis, in front of the demo upstream', () => {
    const gateway = service('gateway');
    expect(dict(gateway.deploy, 'gateway.deploy').replicas).toBe(3);

    const env = environment(gateway);
    const redisUrl = new URL(env.REDIS_URL);
    expect(redisUrl.protocol).toBe('redis:');
    expect(redisUrl.hostname).toBe('redis');
    expect(services).toHaveProperty(redisUrl.hostname);
    expect(env.UPSTREAM_URL).toBe('http://upstream:3000');
    expect(environment(service('upstream')).PORT).toBe('3000');

    const dependsOn = dict(gateway.depends_on, 'gateway.depends_on');
    expect(dict(dependsOn.redis, 'depends_on.redis').condition).toBe('service_healthy');
    expect(JSON.stringify(dict(service('redis').healthcheck, 'redis.healthcheck').test)).toContain('redis-cli');
  });

  it('guards the admin port: token required, published on loopback only', () => {
    const env = environment(service('gateway'));
    expect(env.ADMIN_HOST).toBe('0.0.0.0');
    // Binding beyond loopback makes the token mandatory (SPEC §1).
    expect(env.ADMIN_TOKEN).toMatch(/^\$\{ADMIN_TOKEN:-.+\}$/);
    for (const port of publishedPorts(service('gateway'))) {
      expect({ target: port.target, hostIp: port.hostIp }).toEqual({ target: port.target, hostIp: '127.0.0.1' });
    }
  });

  it('publishes nothing on every interface except nginx on 8080', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const port of publishedPorts(dict(svc, name))) {
        if (name === 'nginx' && port.target === 8080) continue;
        expect({ service: name, ...port, loopback: isLoopback(port.hostIp) }).toEqual({ service: name, ...port, loopback: true });
      }
    }
    expect(publishedPorts(service('nginx'))).toContainEqual({ hostIp: '0.0.0.0', published: '8080', target: 8080 });
  });

  it("trusts X-Forwarded-For from nginx's fixed address only", () => {
    const nginx = service('nginx');
    const nets = isDict(nginx.networks) ? Object.values(nginx.networks) : [];
    const nginxIps = nets.flatMap((n) => (isDict(n) && typeof n.ipv4_address === 'string' ? [n.ipv4_address] : []));
    expect(nginxIps).toHaveLength(1);
    const trusted = environment(service('gateway')).TRUST_PROXY.split(',').map((cidr) => cidr.trim());
    expect(trusted).toEqual([`${nginxIps[0]}/32`]);
  });

  it('mounts nginx/nginx.conf, which exists', () => {
    const source = mountSourceFor(service('nginx'), '/etc/nginx/nginx.conf');
    expect(source).toBe('./nginx/nginx.conf');
    expect(existsSync(join(ROOT, source ?? ''))).toBe(true);
  });

  it('runs the demo upstream from the image, with a script the Dockerfile copies', () => {
    const upstream = service('upstream');
    expect(upstream.image).toBe(service('gateway').image);
    const script = commandWords(upstream).find((word) => word.endsWith('.js'));
    expect(script).toBe('scripts/echo-upstream.js');
    const copied = dockerfile
      .filter((i) => i.keyword === 'COPY')
      .flatMap((i) => copyArgs(i.args).sources);
    expect(copied).toContain(script);
  });

  it('keeps Prometheus, Alertmanager and Grafana behind the observability profile', () => {
    for (const name of ['prometheus', 'alertmanager', 'grafana']) {
      expect(service(name).profiles).toEqual(['observability']);
    }
    for (const name of ['redis', 'upstream', 'gateway', 'nginx']) {
      expect(service(name).profiles).toBeUndefined();
    }
    expect(publishedPorts(service('prometheus'))).toContainEqual({ hostIp: '127.0.0.1', published: '9091', target: 9090 });
    expect(publishedPorts(service('grafana'))).toContainEqual({ hostIp: '127.0.0.1', published: '3001', target: 3000 });
    expect(publishedPorts(service('alertmanager'))).toContainEqual({ hostIp: '127.0.0.1', published: '9093', target: 9093 });
  });

  it('loads observability/alerts.yml into Prometheus and sends its alerts to the Alertmanager service (SPEC §12)', () => {
    const prometheus = service('prometheus');
    const config = dict(parse(read('observability/prometheus.yml')), 'prometheus.yml');
    // rule_files are relative to the config file: both are mounted in the same directory.
    const configTarget = bindMounts(prometheus).find((m) => m.source === './observability/prometheus.yml')?.target ?? '';
    const ruleFiles = (config.rule_files as unknown[]).map(String);
    expect(ruleFiles.length).toBeGreaterThan(0);
    for (const file of ruleFiles) {
      const inContainer = file.startsWith('/') ? file : join(configTarget, '..', file);
      expect({ file, source: mountSourceFor(prometheus, inContainer) }).toEqual({ file, source: './observability/alerts.yml' });
    }

    const alerting = dict(config.alerting, 'alerting');
    const targets = (alerting.alertmanagers as unknown[])
      .flatMap((am) => (dict(am, 'alertmanager').static_configs as unknown[]))
      .flatMap((sc) => (dict(sc, 'static_config').targets as unknown[]).map(String));
    expect(targets).toEqual(['alertmanager:9093']);
    expect(dict(prometheus, 'prometheus').depends_on).toEqual(expect.arrayContaining(['alertmanager']));

    const alertmanager = service('alertmanager');
    expect(alertmanager.image).toMatch(/^prom\/alertmanager:v0\.\d+\.\d+$/);
    const configFlag = commandWords(alertmanager).find((word) => word.startsWith('--config.file='));
    expect(configFlag).toBeDefined();
    const source = mountSourceFor(alertmanager, (configFlag ?? '').slice('--config.file='.length));
    expect(source).toBe('./observability/alertmanager.yml');
    expect(existsSync(join(ROOT, source ?? ''))).toBe(true);
  });

  it('points Prometheus at a config that scrapes /metrics on every gateway replica', () => {
    const prometheus = service('prometheus');
    const configFlag = commandWords(prometheus).find((word) => word.startsWith('--config.file='));
    const inContainer = configFlag ? configFlag.slice('--config.file='.length) : '/etc/prometheus/prometheus.yml';
    const source = mountSourceFor(prometheus, inContainer);
    expect(source).toBe('./observability/prometheus.yml');
    const configPath = join(ROOT, source ?? '');
    expect(existsSync(configPath)).toBe(true);

    const config = dict(parse(readFileSync(configPath, 'utf8')), 'prometheus.yml');
    const scrapes = (config.scrape_configs as unknown[]).map((s) => dict(s, 'scrape_config'));
    const job = scrapes.find((s) => Array.isArray(s.dns_sd_configs));
    expect(job).toBeDefined();
    expect(job?.metrics_path ?? '/metrics').toBe('/metrics');
    const sd = dict((job?.dns_sd_configs as unknown[])[0], 'dns_sd_config');
    expect(sd.names).toEqual(expect.arrayContaining([expect.stringMatching(/^(tasks\.)?gateway$/)]));
    expect(sd.port).toBe(9090);
    expect(sd.type ?? 'SRV').toBe('A');
  });
});

describe('Dockerfile', () => {
  const all = stages();
  const runtime = all[all.length - 1];

  it('is multi-stage on node:20-slim', () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const stage of all) expect(stage.base).toBe('node:20-slim');
    const build = all.find((stage) => stage.instructions.some((i) => i.keyword === 'RUN' && /npm run build/.test(i.args)));
    expect(build).toBeDefined();
    expect(build?.instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args))).toBe(true);
    expect(runtime.instructions.some((i) => i.keyword === 'RUN' && /npm ci --omit=dev/.test(i.args))).toBe(true);
  });

  it('runs the final stage as a non-root user', () => {
    const users = runtime.instructions.filter((i) => i.keyword === 'USER').map((i) => i.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users[users.length - 1]);
  });

  it('has a HEALTHCHECK on /livez that needs no curl', () => {
    const healthchecks = runtime.instructions.filter((i) => i.keyword === 'HEALTHCHECK');
    expect(healthchecks).toHaveLength(1);
    expect(healthchecks[0].args).toMatch(/CMD\s+node\b/);
    expect(healthchecks[0].args).toContain('/livez');
    expect(healthchecks[0].args).toContain('${ADMIN_PORT:-9090}');
  });

  it('starts dist/main.js, the package bin', () => {
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    const startup = runtime.instructions
      .filter((i) => i.keyword === 'ENTRYPOINT' || i.keyword === 'CMD')
      .flatMap((i) => JSON.parse(i.args) as string[]);
    expect(startup).toContain(pkg.bin.tollgate);
    const exposed = runtime.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    expect(exposed).toEqual(expect.arrayContaining(['8080', '9090']));
  });

  it('copies only paths that exist in the repo and are in the build context', () => {
    const fromContext = dockerfile
      .filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')
      .map((i) => copyArgs(i.args))
      .filter((copy) => copy.flags.from === undefined);
    expect(fromContext.length).toBeGreaterThan(0);
    for (const copy of fromContext) {
      for (const source of copy.sources) {
        expect({ source, exists: existsSync(join(ROOT, source)) }).toEqual({ source, exists: true });
        expect({ source, ignored: isIgnored(source, dockerignore) }).toEqual({ source, ignored: false });
      }
    }
  });

  it('copies dist/ from a stage that builds it', () => {
    const stageNames = all.map((stage) => stage.name);
    const fromStages = dockerfile
      .filter((i) => i.keyword === 'COPY')
      .map((i) => copyArgs(i.args))
      .filter((copy) => copy.flags.from !== undefined);
    expect(fromStages.length).toBeGreaterThan(0);
    for (const copy of fromStages) {
      expect(stageNames).toContain(copy.flags.from);
      const stage = all.find((s) => s.name === copy.flags.from);
      expect(stage?.instructions.some((i) => i.keyword === 'RUN' && /npm run build/.test(i.args))).toBe(true);
    }
    // The build writes dist/ (tsconfig.build.json outDir), which the runtime copies.
    const buildConfig = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { outDir: string } };
    expect(fromStages.some((copy) => copy.sources.some((s) => s.endsWith(`/${buildConfig.compilerOptions.outDir}`)))).toBe(true);
  });
});

describe('.dockerignore', () => {
  it('exists and keeps node_modules (and other local output) out of the context', () => {
    expect(statSync(join(ROOT, '.dockerignore')).isFile()).toBe(true);
    expect(isIgnored('node_modules', dockerignore)).toBe(true);
    expect(isIgnored('node_modules/ioredis/package.json', dockerignore)).toBe(true);
    expect(isIgnored('dist/main.js', dockerignore)).toBe(true);
    expect(isIgnored('.git', dockerignore)).toBe(true);
    expect(isIgnored('src/main.ts', dockerignore)).toBe(false);
  });
});
