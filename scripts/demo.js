#!/usr/bin/env node
'use strict';

// `npm run demo`: one command for a newcomer. Builds if needed, starts the echo upstream
// and the gateway on the in-process store with the demo keys, and prints curl lines.
// Ports: PORT (default 8080) and ADMIN_PORT (default 9090); the upstream takes a free port.

const { spawn, spawnSync } = require('node:child_process');
const { existsSync, statSync, readdirSync } = require('node:fs');
const { join } = require('node:path');
const { startEchoUpstream } = require('./echo-upstream');

const root = join(__dirname, '..');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function buildIfNeeded() {
  const main = join(root, 'dist', 'main.js');
  if (existsSync(main) && statSync(main).mtimeMs >= newestMtime(join(root, 'src'))) return;
  console.log('building tollgate (npm run build)…');
  const r = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status || 1);
}

async function main() {
  buildIfNeeded();
  const upstream = await startEchoUpstream({ port: 0, host: '127.0.0.1' });
  const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;
  const port = process.env.PORT || '8080';
  const adminPort = process.env.ADMIN_PORT || '9090';
  const gateway = spawn(process.execPath, [join(root, 'dist', 'main.js')], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, UPSTREAM_URL: upstreamUrl, PORT: port, ADMIN_PORT: adminPort, HOST: '127.0.0.1', STORE: 'memory', LOG_LEVEL: process.env.LOG_LEVEL || 'info' },
  });
  let shown = false;
  gateway.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    if (!shown && chunk.toString().includes('tollgate listening')) {
      shown = true;
      const p = `http://127.0.0.1:${port}`;
      const a = `http://127.0.0.1:${adminPort}`;
      console.log(`
tollgate is running: proxy ${p} → echo upstream ${upstreamUrl}; admin ${a}

Try it:
  curl -i -H 'x-api-key: demo_free_key_123' ${p}/hello                       # 200 with X-RateLimit-* headers
  for i in $(seq 21); do curl -s -o /dev/null -w '%{http_code} ' -H 'x-api-key: demo_free_key_123' ${p}/; done; echo   # 20 × 200, then 429
  curl -i -H 'x-api-key: demo_free_key_123' ${p}/                             # 429 with Retry-After
  curl -i ${p}/                                                               # 401 missing_api_key
  curl -X PUT -d '{"status":"DEGRADED"}' ${a}/admin/health                   # shed load: free drops to 2 per minute
  curl -i -H 'x-api-key: demo_pro_key_789' ${p}/                              # pro keeps 100 (X-RateLimit-Limit: 100)
  curl -X PUT -d '{"status":"NORMAL"}' ${a}/admin/health
  curl -X POST -d '{"tier":"pro","name":"acme"}' ${a}/admin/keys            # a new key, shown once
  curl ${a}/metrics | grep tollgate_requests_total

Ctrl-C stops both.`);
    }
  });
  const stop = () => {
    gateway.kill('SIGTERM');
    upstream.close();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  gateway.on('exit', (code) => {
    upstream.close();
    process.exit(code === null ? 0 : code);
  });
}

main().catch((err) => {
  console.error(`demo failed: ${err.message}`);
  process.exit(1);
});
