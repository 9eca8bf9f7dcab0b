import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { requireBinary } from './binaries';
import { freePort } from './ports';
import { spawnTracked, waitForAlive, type TrackedChild } from './processes';

/** One alert as Prometheus' /api/v1/alerts lists it (pending or firing; resolved ones are gone). */
export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

export interface PrometheusServer {
  readonly url: string;
  /** GET /api/v1/alerts */
  alerts(): Promise<PrometheusAlert[]>;
  /** GET /api/v1/targets' active targets, with their health ("up", "down", "unknown"). */
  targets(): Promise<{ scrapeUrl: string; health: string; lastError: string }[]>;
  output(): string;
  /** SIGTERM (SIGKILL after 5 s), then removes its directory. */
  stop(): Promise<void>;
}

export interface StartPrometheusOptions {
  /** prometheus.yml, as text. */
  config: string;
  /** Other files next to it (rule files named by `rule_files`), name → text. */
  files?: Record<string, string>;
}

const READY_TIMEOUT_MS = 20000;
const START_ATTEMPTS = 3;

function getJson<T>(url: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${url} → ${String(res.statusCode)}: ${body}`));
          return;
        }
        try {
          resolve(JSON.parse(body) as T);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

function getStatus(url: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/**
 * A real Prometheus (the Debian binary, required) on a free loopback port, with its config,
 * rule files and TSDB in a temp directory of its own.
 */
export async function startPrometheus(opts: StartPrometheusOptions): Promise<PrometheusServer> {
  const binary = requireBinary('prometheus', 'prometheus');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-prometheus-'));
  writeFileSync(path.join(dir, 'prometheus.yml'), opts.config);
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(path.join(dir, name), text);

  let child: TrackedChild | undefined;
  let url = '';
  for (let attempt = 1; child === undefined; attempt++) {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const started = await spawnTracked(`prometheus :${port}`, binary, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, `data-${attempt}`)}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ], { cwd: dir });
    try {
      await waitForAlive(started, `prometheus ${url}/-/ready to answer 200`, async () => (await getStatus(`${url}/-/ready`)) === 200, READY_TIMEOUT_MS, 100);
      child = started;
    } catch (error) {
      await started.stop('SIGKILL');
      await started.drained(500);
      // freePort() only proves the port was free a moment ago.
      if (attempt < START_ATTEMPTS && /address already in use/i.test(started.output())) continue;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`prometheus did not start: ${error instanceof Error ? error.message : String(error)}\n--- output ---\n${started.output()}`, { cause: error });
    }
  }
  const running = child;
  return {
    url,
    async alerts() {
      const r = await getJson<{ status: string; data: { alerts: PrometheusAlert[] } }>(`${url}/api/v1/alerts`);
      return r.data.alerts;
    },
    async targets() {
      const r = await getJson<{ data: { activeTargets: { scrapeUrl: string; health: string; lastError: string }[] } }>(`${url}/api/v1/targets`);
      return r.data.activeTargets;
    },
    output: () => running.output(),
    async stop() {
      await running.stop('SIGTERM', 5000);
      await running.drained(500);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
