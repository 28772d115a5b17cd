import { resolve } from 'node:path';
import { EXIT } from '../../core/errors.js';
import { defaultStateDir } from '../../core/paths.js';
import { drillTrend, listDrills, summarize } from '../../report/drill-history.js';
import { parse, usage } from '../args.js';

const OPTIONS = {
  cluster: { type: 'string' },
  'state-dir': { type: 'string' },
  output: { type: 'string' },
} as const;

/** `pgplay drills`: the stored drill reports, oldest first, with the RTO change against the previous passed drill. */
export async function drillsCommand(argv: string[], write: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('drills', argv, OPTIONS);
  if (positionals.length) throw usage(`drills takes no arguments, got "${positionals[0]}"`, 'drills');
  const output = values.output ?? 'human';
  if (output !== 'human' && output !== 'json') throw usage(`--output must be human or json, got "${values.output}"`, 'drills');
  const stateDir = values['state-dir'] !== undefined ? resolve(values['state-dir']) : defaultStateDir();
  const drills = listDrills(stateDir, values.cluster);
  const rows = drills.map((d) => ({ ...summarize(d), rto_change: drillTrend(d, drills.filter((x) => x.run.cluster === d.run.cluster), d.trend?.threshold).rto_change, slowdown: d.trend?.slowdown ?? false }));
  if (output === 'json') {
    write(JSON.stringify(rows, null, 2) + '\n');
    return EXIT.OK;
  }
  if (rows.length === 0) {
    write(`no drill reports in ${stateDir}/drills${values.cluster ? ` for cluster ${values.cluster}` : ''}\n`);
    return EXIT.OK;
  }
  const table = [['started', 'cluster', 'verdict', 'RTO', 'vs previous', 'RPO', 'backup set', 'target', 'run']];
  for (const r of rows) {
    table.push([
      r.started,
      r.cluster,
      r.status.toUpperCase(),
      r.rto_ms === null ? '-' : `${(r.rto_ms / 1000).toFixed(1)} s`,
      r.rto_change === null ? '-' : `${r.rto_change >= 0 ? '+' : ''}${(r.rto_change * 100).toFixed(0)} %${r.slowdown ? ' SLOWDOWN' : ''}`,
      r.rpo_s === null ? '-' : `${r.rpo_s.toFixed(1)} s`,
      r.backup_set ?? '-',
      r.target,
      r.run_id,
    ]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table) write(row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
  return EXIT.OK;
}
