'use strict';
// The overload experiment's report: a markdown table and a hand-written SVG timeline (state
// band, goodput per group, overload refusals per second) per mode. Pure: data in, text out.

const STATE_COLOR = { NORMAL: '#43a047', DEGRADED: '#fb8c00', CRITICAL: '#e53935' };
const GROUP_COLOR = { free: '#9e9e9e', 'pro-within': '#1e88e5', 'pro-above': '#8e24aa', enterprise: '#00897b' };
const FALLBACK_COLORS = ['#6d4c41', '#3949ab', '#c0ca33', '#d81b60'];

const pct = (x) => (x === null || x === undefined ? '—' : `${(100 * x).toFixed(x >= 0.95 && x < 1 ? 1 : 0)} %`);
const secs = (x) => (x === null || x === undefined ? '—' : `${x.toFixed(1)} s`);
const ms = (x) => (x === null || x === undefined ? '—' : `${Math.round(x)}`);

function recoverText(r) {
  if (r.recoverSeconds !== null) return secs(r.recoverSeconds);
  return r.recovered === false ? 'not by the end' : '—';
}

function phaseNames(report) {
  return report.timeline.phases.map((p) => p.name);
}

function summaryTable(report) {
  const phases = phaseNames(report);
  const head = ['mode', ...phases.map((p) => `within-contract goodput, ${p}`), 'detect', 'recover', 'transitions', 'flaps', 'overload refusals', 'shed precision'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const run of report.runs) {
    if (run.error) {
      lines.push(`| ${run.mode} | ${phases.map(() => '—').join(' | ')} | failed: ${run.error.split('\n')[0]} | | | | | |`);
      continue;
    }
    const r = run.result;
    lines.push(`| ${run.mode} | ${phases.map((p) => pct(r.phases[p].withinContractGoodput)).join(' | ')} | ${secs(r.detectSeconds)} | ${recoverText(r)} | ${r.transitionCount} | ${r.flaps} | ${r.overloadRefusals} | ${pct(r.shedPrecision)} |`);
  }
  return lines.join('\n');
}

function detailTable(report) {
  const head = ['mode', 'phase', 'group', 'sent', '2xx ≤ 1 s', '429', '503 overloaded', 'timeouts', '502/504', 'other', 'p50 ms', 'p99 ms'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const run of report.runs) {
    if (run.error) continue;
    for (const p of phaseNames(report)) {
      for (const g of report.groups) {
        const c = run.result.phases[p].groups[g.name];
        const other = (c.otherStatus || 0) + (c.error || 0);
        lines.push(`| ${run.mode} | ${p} | ${g.name} | ${c.sent} | ${pct(c.goodput)} | ${c.limited} | ${c.overloaded} | ${c.timeout} | ${c.upstreamError} | ${other} | ${ms(c.p50Ms)} | ${ms(c.p99Ms)} |`);
      }
    }
  }
  return lines.join('\n');
}

function targetValue(t) {
  if (t.note) return t.note;
  if (t.value === null || t.value === undefined) return '—';
  if (/goodput|precision/.test(t.name)) return pct(t.value);
  if (/within \d+ s/.test(t.name)) return secs(t.value);
  return String(t.value);
}

function targetsTable(report) {
  const runs = report.runs.filter((r) => !r.error && r.targets && r.targets.length);
  if (!runs.length) return 'No targets for this scenario.';
  const lines = [`| target | ${runs.map((r) => r.mode).join(' | ')} |`, `| --- | ${runs.map(() => '---').join(' | ')} |`];
  for (const [i, t] of runs[0].targets.entries()) {
    lines.push(`| ${t.name} | ${runs.map((r) => `${targetValue(r.targets[i])} ${r.targets[i].met ? '✓' : '✗'}`).join(' | ')} |`);
  }
  return lines.join('\n');
}

function groupsTable(report) {
  const lines = ['| group | tier | keys | req/s in all | req/s per key | per window per key | tier limit / burst / degraded / critical | contract |', '| --- | --- | --- | --- | --- | --- | --- | --- |'];
  const w = report.tiers.windowSeconds;
  for (const g of report.groups) {
    const t = report.tiers.tiers[g.tier];
    const perKey = g.rate / g.keys;
    const degraded = t.degraded ?? t.limit;
    const critical = t.critical ?? degraded;
    lines.push(`| ${g.name} | ${g.tier} | ${g.keys} | ${g.rate} | ${+perKey.toFixed(2)} | ${+(perKey * w).toFixed(1)} | ${t.limit} / ${t.burst ?? t.limit} / ${degraded} / ${critical} | ${g.contract} |`);
  }
  return lines.join('\n');
}

function transitionsText(report) {
  const out = [];
  for (const run of report.runs) {
    if (run.error) continue;
    const list = run.result.transitions.map((t) => `${t.t.toFixed(1)} s ${t.from}→${t.to}${t.by === 'operator' ? ' (operator)' : ''}`).join(', ') || 'none';
    const ops = (run.operator || []).map((o) => `${o.t.toFixed(1)} s PUT ${o.status} (${o.code})`).join(', ');
    const load = run.loadavg ? `; machine load average ${run.loadavg.before[0]} → ${run.loadavg.after[0]}` : '';
    const lags = (run.upstream || []).map((u) => u.lagMaxMs).filter((x) => typeof x === 'number');
    const starved = lags.filter((x) => x >= 50).length;
    const upstreamLag = lags.length ? `; upstream event-loop lag max ${Math.max(...lags)} ms, ≥ 50 ms in ${starved} of ${lags.length} s` : '';
    out.push(`- **${run.mode}**: ${list}${ops ? `; operator: ${ops}` : ''}; gateway reported mode \`${run.gatewayMode ?? '?'}\`${load}${upstreamLag}`);
  }
  return out.join('\n');
}

function renderMarkdown(report) {
  const tl = report.timeline;
  const phases = tl.phases.map((p) => `${p.name} ${p.from}–${p.to} s`).join(', ');
  const faults = tl.faults.length ? tl.faults.map(([a, b]) => `${a}–${b} s`).join(', ') : 'none';
  const u = report.upstream;
  const warnings = (report.warnings || []).map((w) => `> **Warning:** ${w}`).join('\n');
  return `# Overload experiment: scenario \`${report.scenario}\`, preset \`${report.preset}\`

${report.date}; ${report.wallSeconds} s wall clock for ${report.runs.length} mode(s); node ${report.machine.node}, ${report.machine.cpuCount} × ${report.machine.cpuModel}.
Command: \`${report.command}\`

Upstream: ${u.slots} slots, ${u.healthyMs} ms per request when healthy (${Math.round((1000 * u.slots) / u.healthyMs)} req/s), ${u.faultMs} ms during the fault (${Math.round((1000 * u.slots) / u.faultMs)} req/s, ${Math.round(100 * (1 - u.healthyMs / u.faultMs))} % of the capacity lost); excess requests queue.
Fault: ${faults}. Phases: ${phases}. Client timeout ${report.timeoutMs} ms. Flap = a transition undone within ${report.dwell} s.
${warnings ? `\n${warnings}\n` : ''}
## Summary

${summaryTable(report)}

Within-contract goodput: share of the requests sent by keys under their tier's \`limit\` (pro-within, enterprise) answered 2xx within ${report.timeoutMs} ms.
Detect: fault start → first DEGRADED/CRITICAL seen by polling \`GET /admin/health\` every ${report.pollMs} ms. Recover: fault end → NORMAL for good.
Shed precision: share of the 503 \`overloaded\` refusals that hit free or above-contract requests.

## Issue 12's targets

The targets are set for \`HEALTH_MODE=auto CONCURRENCY_LIMIT=auto\` and the full preset's timeline; the other modes and presets are checked the same way for comparison.

${targetsTable(report)}

## Transitions

${transitionsText(report)}

## Per group and phase

${detailTable(report)}

## Load and tiers

${groupsTable(report)}

Tiers file (window ${report.tiers.windowSeconds} s, \`${report.tiers.algorithm}\`): \`${JSON.stringify(report.tiers.tiers)}\`

Timeline chart: [${report.svgFile}](${report.svgFile}).
`;
}

// ---------------------------------------------------------------- SVG

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function groupColor(name, i) {
  return GROUP_COLOR[name] || FALLBACK_COLORS[i % FALLBACK_COLORS.length];
}

function panel(report, run, y0, W, seconds) {
  const left = 70;
  const right = W - 20;
  const width = right - left;
  const x = (t) => left + (width * t) / Math.max(1, seconds);
  const parts = [];
  parts.push(`<text x="${left}" y="${y0 + 14}" font-size="13" font-weight="bold">${esc(run.mode)}</text>`);
  if (!run.result) {
    parts.push(`<text x="${left}" y="${y0 + 40}" font-size="12" fill="#c62828">failed: ${esc((run.error || '').split('\n')[0])}</text>`);
    return parts.join('\n');
  }
  const s = run.result.series;
  // state band
  const bandY = y0 + 22;
  parts.push(`<text x="${left - 6}" y="${bandY + 11}" font-size="10" text-anchor="end">state</text>`);
  s.state.forEach((st, i) => {
    parts.push(`<rect x="${x(i).toFixed(1)}" y="${bandY}" width="${(x(i + 1) - x(i) + 0.3).toFixed(1)}" height="14" fill="${st ? STATE_COLOR[st] || '#bdbdbd' : '#e0e0e0'}"/>`);
  });
  // goodput plot
  const gy = bandY + 24;
  const gh = 120;
  for (const [a, b] of report.timeline.faults) {
    parts.push(`<rect x="${x(a).toFixed(1)}" y="${gy}" width="${(x(b) - x(a)).toFixed(1)}" height="${gh}" fill="#ffebee"/>`);
  }
  parts.push(`<rect x="${left}" y="${gy}" width="${width}" height="${gh}" fill="none" stroke="#9e9e9e"/>`);
  for (const v of [0, 0.5, 1]) {
    const yy = gy + gh * (1 - v);
    parts.push(`<line x1="${left}" x2="${right}" y1="${yy}" y2="${yy}" stroke="#eeeeee"/>`);
    parts.push(`<text x="${left - 6}" y="${yy + 4}" font-size="10" text-anchor="end">${v * 100} %</text>`);
  }
  parts.push(`<text x="${left - 40}" y="${gy + gh / 2}" font-size="10" transform="rotate(-90 ${left - 40} ${gy + gh / 2})" text-anchor="middle">2xx ≤ 1 s</text>`);
  report.groups.forEach((g, gi) => {
    const vals = s.goodput[g.name];
    let d = '';
    let pen = false;
    vals.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${x(i + 0.5).toFixed(1)},${(gy + gh * (1 - v)).toFixed(1)}`;
      pen = true;
    });
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${groupColor(g.name, gi)}" stroke-width="1.6"/>`);
  });
  // refusals per second
  const ry = gy + gh + 10;
  const rh = 50;
  const max = Math.max(1, ...s.overloaded, ...s.limited);
  parts.push(`<rect x="${left}" y="${ry}" width="${width}" height="${rh}" fill="none" stroke="#9e9e9e"/>`);
  s.limited.forEach((v, i) => {
    if (v) parts.push(`<rect x="${x(i).toFixed(1)}" y="${(ry + rh * (1 - v / max)).toFixed(1)}" width="${Math.max(0.8, x(i + 1) - x(i) - 0.6).toFixed(1)}" height="${((rh * v) / max).toFixed(1)}" fill="#cfd8dc"/>`);
  });
  s.overloaded.forEach((v, i) => {
    if (v) parts.push(`<rect x="${x(i).toFixed(1)}" y="${(ry + rh * (1 - v / max)).toFixed(1)}" width="${Math.max(0.8, x(i + 1) - x(i) - 0.6).toFixed(1)}" height="${((rh * v) / max).toFixed(1)}" fill="#c62828" fill-opacity="0.8"/>`);
  });
  parts.push(`<text x="${left - 6}" y="${ry + 10}" font-size="10" text-anchor="end">${max}/s</text>`);
  parts.push(`<text x="${left - 6}" y="${ry + rh}" font-size="10" text-anchor="end">0</text>`);
  // time axis
  const step = seconds > 240 ? 60 : seconds > 90 ? 30 : seconds > 30 ? 10 : 5;
  const ay = ry + rh + 14;
  for (let t = 0; t <= seconds; t += step) {
    parts.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${ry + rh}" y2="${ry + rh + 4}" stroke="#616161"/>`);
    parts.push(`<text x="${x(t).toFixed(1)}" y="${ay}" font-size="10" text-anchor="middle">${t} s</text>`);
  }
  return parts.join('\n');
}

const PANEL_H = 260;

function renderSvg(report) {
  const W = 980;
  const top = 44;
  const H = top + PANEL_H * report.runs.length + 10;
  const legend = [];
  let lx = 70;
  for (const [st, color] of Object.entries(STATE_COLOR)) {
    legend.push(`<rect x="${lx}" y="26" width="12" height="10" fill="${color}"/><text x="${lx + 16}" y="35" font-size="11">${st}</text>`);
    lx += 90;
  }
  report.groups.forEach((g, i) => {
    legend.push(`<line x1="${lx}" x2="${lx + 14}" y1="31" y2="31" stroke="${groupColor(g.name, i)}" stroke-width="2"/><text x="${lx + 18}" y="35" font-size="11">${esc(g.name)}</text>`);
    lx += 100;
  });
  legend.push(`<rect x="${lx}" y="26" width="12" height="10" fill="#c62828"/><text x="${lx + 16}" y="35" font-size="11">503 overloaded/s</text>`);
  lx += 120;
  legend.push(`<rect x="${lx}" y="26" width="12" height="10" fill="#cfd8dc"/><text x="${lx + 16}" y="35" font-size="11">429/s</text>`);
  // one time scale for every panel, so that the modes line up
  const seconds = Math.max(1, ...report.runs.map((r) => (r.result ? r.result.series.state.length : 0)));
  const panels = report.runs.map((run, i) => panel(report, run, top + i * PANEL_H, W, seconds));
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">
<rect width="${W}" height="${H}" fill="#ffffff"/>
<text x="70" y="16" font-size="14" font-weight="bold">tollgate overload experiment: ${esc(report.scenario)} (${esc(report.preset)}), fault shaded</text>
${legend.join('\n')}
${panels.join('\n')}
</svg>
`;
}

/**
 * JSON for people and for diffs: an object or array goes on one line when it fits in `width`
 * characters (a poll, a bucket, a per-second series of a short run), else one member a line.
 */
function toJson(value, indent = '', width = 120) {
  const flat = JSON.stringify(value);
  if (flat === undefined || value === null || typeof value !== 'object' || indent.length + flat.length <= width) return flat;
  const inner = `${indent}  `;
  if (Array.isArray(value) && value.every((v) => v === null || typeof v !== 'object')) {
    const lines = [];
    let line = '';
    for (const v of value) {
      const item = JSON.stringify(v === undefined ? null : v);
      if (line && inner.length + line.length + item.length + 2 > width) {
        lines.push(line);
        line = '';
      }
      line += line ? `, ${item}` : item;
    }
    lines.push(line);
    return `[\n${lines.map((l) => `${inner}${l}`).join(',\n')}\n${indent}]`;
  }
  if (Array.isArray(value)) {
    return `[\n${value.map((v) => `${inner}${toJson(v === undefined ? null : v, inner, width)}`).join(',\n')}\n${indent}]`;
  }
  const members = Object.entries(value).filter(([, v]) => v !== undefined);
  return `{\n${members.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${toJson(v, inner, width)}`).join(',\n')}\n${indent}}`;
}

module.exports = { renderMarkdown, renderSvg, summaryTable, targetsTable, toJson };
