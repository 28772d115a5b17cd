/** The status report for people: a table per check, the worst first line; and for machines, JSON. */
import type { CheckResult, StatusReport } from './types.js';

const MARK = { ok: 'OK', warning: 'WARNING', critical: 'CRITICAL' } as const;

export function formatStatusHuman(report: StatusReport): string {
  const lines = [`${MARK[report.severity]}: cluster ${report.cluster} (${report.inventory}) at ${report.time}`, ''];
  for (const check of report.checks) lines.push(...table(check), '');
  const bad = report.checks.flatMap((c) => c.findings.filter((f) => f.severity !== 'ok').map((f) => `${c.id}${f.host ? ` ${f.host}` : ''}: ${f.message}`));
  lines.push(bad.length ? `${bad.length} problem${bad.length === 1 ? '' : 's'}:` : 'no problems');
  for (const b of bad) lines.push(`  ${b}`);
  return lines.join('\n') + '\n';
}

function table(check: CheckResult): string[] {
  const rows = check.findings.map((f) => [MARK[f.severity], f.host ?? '-', f.message]);
  const w0 = Math.max(6, ...rows.map((r) => r[0]!.length));
  const w1 = Math.max(4, ...rows.map((r) => r[1]!.length));
  const line = (r: string[]) => `  ${r[0]!.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]}`.trimEnd();
  return [`${check.title} [${check.id}]: ${MARK[check.severity]}`, line(['STATUS', 'HOST', 'FINDING']), ...rows.map(line)];
}

export function formatStatusJson(report: StatusReport): string {
  return JSON.stringify({ type: 'status', ...report }) + '\n';
}
