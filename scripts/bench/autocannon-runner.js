'use strict';
// Closed-loop load with autocannon in its own process (used when wrk is not installed or
// with --loadgen autocannon). Latency is taken from every response (any status) with
// sub-millisecond precision, like wrk does, instead of autocannon's whole-ms 2xx histogram.
//
// usage: node autocannon-runner.js '<json config>'
//   { url, connections, duration, warmup, headers, keys?, overallRate? }
// stdout: "MEASURE_START" / "MEASURE_END" around the measured run, then "RESULT <json>".
const autocannon = require('autocannon');

const cfg = JSON.parse(process.argv[2]);

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function run(seconds, record) {
  return new Promise((resolve, reject) => {
    const lat = [];
    const opts = {
      url: cfg.url,
      connections: cfg.connections,
      duration: seconds,
      headers: cfg.headers || {},
    };
    if (cfg.overallRate) opts.overallRate = cfg.overallRate;
    if (Array.isArray(cfg.keys) && cfg.keys.length) {
      let i = 0;
      const keys = cfg.keys;
      opts.requests = [{
        setupRequest: (req) => {
          req.headers = Object.assign({}, req.headers, { 'x-api-key': keys[i++ % keys.length] });
          return req;
        },
      }];
    }
    const inst = autocannon(opts, (err, result) => (err ? reject(err) : resolve({ result, lat })));
    if (record) inst.on('response', (_c, _status, _bytes, ms) => lat.push(ms));
  });
}

async function main() {
  if (cfg.warmup > 0) await run(cfg.warmup, false);
  process.stdout.write('MEASURE_START\n');
  const cpu0 = process.cpuUsage();
  const { result, lat } = await run(cfg.duration, true);
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write('MEASURE_END\n');
  const sorted = Float64Array.from(lat).sort();
  const statuses = {};
  for (const [code, s] of Object.entries(result.statusCodeStats || {})) statuses[code] = s.count;
  const completed = Object.values(statuses).reduce((a, b) => a + b, 0);
  const out = {
    tool: 'autocannon',
    requests: completed,
    durationS: result.duration,
    reqPerSec: completed / result.duration,
    errors: result.errors,
    timeouts: result.timeouts,
    statuses,
    loadgenCpuUs: cpu.user + cpu.system,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length ? sorted[sorted.length - 1] : null,
  };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
