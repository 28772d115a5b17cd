/**
 * The drill report as JUnit XML, which CI systems and test dashboards read: the drill is a suite, each
 * piece of evidence a test case; a failed one carries its detail and the server log, one that could
 * not run is an error (never a pass).
 */
import type { DrillReport } from './drill.js';
import { drillEvidence } from './drill-evidence.js';

export function xmlEscape(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    // XML 1.0 forbids most control characters even escaped.
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, '');
}

export function formatDrillJunit(r: DrillReport): string {
  const items = drillEvidence(r);
  const failures = items.filter((i) => i.status === 'failed').length;
  const errors = items.filter((i) => i.status === 'could-not-run').length;
  const seconds = r.rto.ms === null ? 0 : r.rto.ms / 1000;
  const log = r.proof.join('\n');
  const suite = `pgplay drill ${r.run.cluster}`;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="pgplay" tests="${items.length}" failures="${failures}" errors="${errors}" time="${seconds}">`,
    `  <testsuite name="${xmlEscape(suite)}" tests="${items.length}" failures="${failures}" errors="${errors}" timestamp="${xmlEscape(r.run.started)}" hostname="${xmlEscape(r.host)}" time="${seconds}">`,
    '    <properties>',
    `      <property name="run" value="${xmlEscape(r.run.id)}"/>`,
    `      <property name="verdict" value="${r.status}"/>`,
    `      <property name="backup_set" value="${xmlEscape(r.backup.set ?? '')}"/>`,
    `      <property name="target" value="${xmlEscape(r.target.value ? `${r.target.type} ${r.target.value}` : r.target.type)}"/>`,
    '    </properties>',
  ];
  for (const i of items) {
    const open = `    <testcase classname="${xmlEscape(suite)}" name="${xmlEscape(i.name)}">`;
    if (i.status === 'passed') {
      lines.push(`${open}<system-out>${xmlEscape(i.detail)}</system-out></testcase>`);
    } else {
      const tag = i.status === 'failed' ? 'failure' : 'error';
      lines.push(open, `      <${tag} message="${xmlEscape(i.detail)}" type="${i.status}">${xmlEscape([i.detail, ...r.problems, log].filter(Boolean).join('\n'))}</${tag}>`, '    </testcase>');
    }
  }
  lines.push('  </testsuite>', '</testsuites>');
  return lines.join('\n') + '\n';
}
