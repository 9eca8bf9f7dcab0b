// Renders nginx/nginx.conf into a directory so a test can run the real nginx with it:
// the listen port and the gateway addresses replaced, every path nginx writes moved into
// that directory, `daemon off;` so the spawned process is nginx's master itself.
//
//   const conf = renderNginxConf({ listenPort, gateways: ['127.0.0.1:41001'], dir });
//   spawn(NGINX_BIN, nginxArgs(conf));            // serves until killed
//   spawnSync(NGINX_BIN, ['-t', ...nginxArgs(conf)]);  // syntax check only
//
// Each replacement must match the source file exactly as expected, otherwise this throws,
// so an edit to nginx.conf that would make tests silently check something else fails loud.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const NGINX_BIN = '/usr/sbin/nginx';
export const NGINX_CONF_SOURCE = resolve(__dirname, '..', '..', 'nginx', 'nginx.conf');

export interface RenderNginxOptions {
  /** The port nginx listens on (replaces `listen 8080;`). */
  listenPort: number;
  /** `host:port` of each gateway (replaces the `server gateway:8080 …;` line). */
  gateways: string[];
  /** An existing, writable directory: the rendered conf, pid, logs and temp files go here. */
  dir: string;
}

const GATEWAY_ADDRESS = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;

function replaceExactlyOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  const count = [...text.matchAll(global)].length;
  if (count !== 1) {
    throw new Error(`renderNginxConf: expected exactly one ${what} in ${NGINX_CONF_SOURCE}, found ${count}`);
  }
  return text.replace(pattern, replacement);
}

/** Writes `<dir>/nginx.conf` and returns its path. */
export function renderNginxConf(opts: RenderNginxOptions): string {
  const { listenPort, gateways, dir } = opts;
  if (!Number.isInteger(listenPort) || listenPort < 1 || listenPort > 65535) {
    throw new Error(`renderNginxConf: listenPort must be 1-65535, got ${listenPort}`);
  }
  if (gateways.length === 0) throw new Error('renderNginxConf: at least one gateway is needed');
  for (const gateway of gateways) {
    if (!GATEWAY_ADDRESS.test(gateway)) {
      throw new Error(`renderNginxConf: gateway must be host:port, got ${JSON.stringify(gateway)}`);
    }
  }
  if (/[\s;'"{}]/.test(dir)) {
    throw new Error(`renderNginxConf: dir must not contain whitespace, quotes, braces or ';': ${dir}`);
  }
  const tmp = resolve(dir);

  let conf = readFileSync(NGINX_CONF_SOURCE, 'utf8');
  conf = replaceExactlyOnce(conf, /^(\s*)listen 8080;$/m, `$1listen 127.0.0.1:${listenPort};`, '`listen 8080;` line');
  conf = replaceExactlyOnce(
    conf,
    /^(\s*)server gateway:8080([^;\n]*);$/m,
    gateways.map((gateway) => `$1server ${gateway}$2;`).join('\n'),
    '`server gateway:8080 …;` line',
  );
  conf = replaceExactlyOnce(conf, /^worker_processes [^;\n]+;$/m, 'worker_processes 2;\ndaemon off;', '`worker_processes` line');
  conf = replaceExactlyOnce(conf, /^pid [^;\n]+;$/m, `pid ${join(tmp, 'nginx.pid')};`, '`pid` line');
  conf = replaceExactlyOnce(conf, /^error_log [^;\n]+;$/m, `error_log ${join(tmp, 'error.log')} info;`, 'top-level `error_log` line');
  conf = replaceExactlyOnce(
    conf,
    /^(\s*)access_log \/dev\/stdout (\w+);$/m,
    `$1access_log ${join(tmp, 'access.log')} $2;`,
    '`access_log /dev/stdout …;` line',
  );
  // The compiled-in temp paths (/var/lib/nginx/…, /var/cache/nginx/…) need root.
  const tempPaths = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((name) => `    ${name}_temp_path ${join(tmp, `${name}_temp`)};`)
    .join('\n');
  conf = replaceExactlyOnce(conf, /^http \{$/m, `http {\n${tempPaths}\n`, '`http {` line');

  // When the tests run as root, nginx's workers run as `nobody` and must be able to
  // enter the directory to reach their temp paths (mkdtemp makes it 0700).
  chmodSync(tmp, 0o755);
  const confPath = join(tmp, 'nginx.conf');
  writeFileSync(confPath, conf);
  return confPath;
}

/** Arguments for `nginx` to run (or, prefixed with `-t`, to check) a rendered conf. */
export function nginxArgs(confPath: string): string[] {
  const dir = resolve(confPath, '..');
  // -e: the error log nginx opens before it has read the conf (nginx >= 1.19.5).
  return ['-p', dir, '-c', confPath, '-e', join(dir, 'error.log')];
}
