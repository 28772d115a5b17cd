/** The drill report as Markdown, for a ticket, a wiki page or an auditor's folder. */
import { phasesText, rpoText, type DrillReport } from './drill.js';
import { targetWord } from './drill-measures.js';
import { drillEvidence } from './drill-evidence.js';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function formatDrillMarkdown(r: DrillReport): string {
  const out = [
    `# Restore drill ${r.status.toUpperCase()}: cluster ${r.run.cluster}`,
    '',
    `| | |`,
    `|---|---|`,
    `| run | ${r.run.id} |`,
    `| started / finished | ${r.run.started} / ${r.run.finished ?? '-'} |`,
    `| restored on | ${r.host} |`,
    `| target | ${cell(r.target.value ? `${r.target.type} ${r.target.value}` : r.target.type)} |`,
    `| backup set | ${cell(r.backup.set ?? '-')}${r.backup.reason ? ` (${cell(r.backup.reason)})` : ''} |`,
    `| RTO | ${r.rto.ms === null ? '-' : `${(r.rto.ms / 1000).toFixed(1)} s`}${r.targets?.rto ? ` (target ${r.targets.rto.target}: ${targetWord(r.targets.rto)})` : ''} |`,
    `| RTO phases | ${cell(phasesText(r))} |`,
    `| RPO | ${cell(rpoText(r))}${r.targets?.rpo ? ` (target ${r.targets.rpo.target}: ${targetWord(r.targets.rpo)})` : ''} |`,
    `| recovery point | ${cell(r.recovery_point.last_transaction ?? r.recovery_point.replayed_to ?? 'unknown')} |`,
    `| timeline of the copy | ${r.timeline ?? '-'} |`,
    '',
    '## Checks',
    '',
    '| check | result | detail |',
    '|---|---|---|',
    ...drillEvidence(r).map((e) => `| ${cell(e.name)} | ${e.status} | ${cell(e.detail)} |`),
  ];
  if (r.problems.length) out.push('', '## Problems', '', ...r.problems.map((p) => `- ${p}`));
  if (r.proof.length) out.push('', '## Server log', '', '```', ...r.proof, '```');
  return out.join('\n') + '\n';
}
