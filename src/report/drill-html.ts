/**
 * The drill report as one self-contained HTML page (inline CSS and SVG, nothing fetched): the facts,
 * the checks, the server-log evidence and a chart of RTO (and RPO, where known) over the cluster's drills.
 */
import { phasesText, rpoText, type DrillReport } from './drill.js';
import { targetWord } from './drill-measures.js';
import { drillEvidence } from './drill-evidence.js';
import type { DrillSummary } from './drill.js';
import { xmlEscape as esc } from './drill-junit.js';

const W = 640;
const H = 220;
const PAD = 40;

/** A line chart of RTO seconds (and RPO seconds) per drill, oldest left; failed drills drawn in red. */
export function trendChart(history: DrillSummary[]): string {
  const points = history.filter((d) => d.rto_ms !== null);
  if (points.length === 0) return '<p id="trend-chart">No drill with a measured RTO yet.</p>';
  const values = points.flatMap((d) => [d.rto_ms! / 1000, d.rpo_s ?? 0]);
  const max = Math.max(...values, 1);
  const x = (i: number) => PAD + (points.length === 1 ? (W - 2 * PAD) / 2 : (i * (W - 2 * PAD)) / (points.length - 1));
  const y = (v: number) => H - PAD - (v / max) * (H - 2 * PAD);
  const line = (get: (d: DrillSummary) => number | null, cls: string) => {
    const pts = points.map((d, i) => [i, get(d)] as const).filter(([, v]) => v !== null);
    return pts.length ? `<polyline class="${cls}" fill="none" points="${pts.map(([i, v]) => `${x(i).toFixed(1)},${y(v!).toFixed(1)}`).join(' ')}"/>` : '';
  };
  const dots = points
    .map((d, i) => `<circle class="${d.status === 'passed' ? 'pass' : 'fail'}" cx="${x(i).toFixed(1)}" cy="${y(d.rto_ms! / 1000).toFixed(1)}" r="4"><title>${esc(`${d.started} ${d.status} RTO ${(d.rto_ms! / 1000).toFixed(1)} s`)}</title></circle>`)
    .join('');
  const labels = points.map((d, i) => `<text x="${x(i).toFixed(1)}" y="${H - PAD + 16}" text-anchor="middle">${esc(d.started.slice(0, 10))}</text>`).join('');
  return [
    `<svg id="trend-chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="RTO and RPO over the cluster's drills">`,
    `<line x1="${PAD}" y1="${H - PAD}" x2="${W - PAD}" y2="${H - PAD}" stroke="#888"/><line x1="${PAD}" y1="${PAD}" x2="${PAD}" y2="${H - PAD}" stroke="#888"/>`,
    `<text x="4" y="${PAD - 8}">${max.toFixed(1)} s</text><text x="4" y="${H - PAD}">0</text>`,
    line((d) => d.rto_ms! / 1000, 'rto'),
    line((d) => d.rpo_s, 'rpo'),
    dots,
    labels,
    `<text x="${W - PAD}" y="${PAD - 8}" text-anchor="end"><tspan class="rto-key">RTO</tspan> <tspan class="rpo-key">RPO</tspan></text>`,
    '</svg>',
  ].join('');
}

export function formatDrillHtml(r: DrillReport, history: DrillSummary[]): string {
  const verdict = r.status === 'passed' ? 'PASSED' : 'FAILED';
  const facts: Array<[string, string]> = [
    ['run', r.run.id],
    ['started / finished', `${r.run.started} / ${r.run.finished ?? '-'}`],
    ['restored on', r.host],
    ['target', r.target.value ? `${r.target.type} ${r.target.value}` : r.target.type],
    ['backup set', `${r.backup.set ?? '-'}${r.backup.reason ? ` (${r.backup.reason})` : ''}`],
    ['RTO', `${r.rto.ms === null ? '-' : `${(r.rto.ms / 1000).toFixed(1)} s`}${r.targets?.rto ? ` (target ${r.targets.rto.target}: ${targetWord(r.targets.rto)})` : ''}`],
    ['RTO phases', phasesText(r)],
    ['RPO', `${rpoText(r)}${r.targets?.rpo ? ` (target ${r.targets.rpo.target}: ${targetWord(r.targets.rpo)})` : ''}`],
    ['recovery point', r.recovery_point.last_transaction ?? r.recovery_point.replayed_to ?? 'unknown'],
    ['timeline of the copy', r.timeline === null ? '-' : String(r.timeline)],
  ];
  const rows = drillEvidence(r)
    .map((e) => `<tr class="${e.status}"><td>${esc(e.name)}</td><td>${e.status}</td><td>${esc(e.detail)}</td></tr>`)
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drill ${verdict}: ${esc(r.run.cluster)} ${esc(r.run.id)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1 .passed{color:#11702b}h1 .failed{color:#b00020}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
tr.failed td{background:#fde4e4}tr.could-not-run td{background:#fff4d6}
pre{background:#f4f4f4;padding:1em;overflow:auto}
polyline.rto,.rto-key{stroke:#1f5fbf;fill:#1f5fbf}polyline.rpo,.rpo-key{stroke:#d98200;fill:#d98200}polyline{stroke-width:2;fill:none}
circle.pass{fill:#11702b}circle.fail{fill:#b00020}svg text{font-size:11px}
</style></head>
<body>
<h1 id="verdict">Restore drill <span class="${r.status}">${verdict}</span>: cluster ${esc(r.run.cluster)}</h1>
<table id="facts">${facts.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
<h2>Checks</h2>
<table id="checks"><tr><th>check</th><th>result</th><th>detail</th></tr>
${rows}
</table>
${r.problems.length ? `<h2>Problems</h2><ul id="problems">${r.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>` : ''}
<h2>RTO and RPO over the cluster's drills</h2>
${trendChart(history)}
<h2>Server log</h2>
<pre id="server-log">${esc(r.proof.join('\n'))}</pre>
</body></html>
`;
}
