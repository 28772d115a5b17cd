import { resolve } from 'node:path';
import { EXIT, PgplayError } from '../../core/errors.js';
import { defaultStateDir } from '../../core/paths.js';
import { findRun } from '../../journal/reader.js';
import { buildDrillReport, formatDrillReport } from '../../report/drill.js';
import { drillTrend, listDrills, summarize } from '../../report/drill-history.js';
import { formatDrillHtml } from '../../report/drill-html.js';
import { formatDrillJunit } from '../../report/drill-junit.js';
import { formatDrillMarkdown } from '../../report/drill-markdown.js';
import { parse, usage } from '../args.js';

const OPTIONS = {
  format: { type: 'string' },
  'state-dir': { type: 'string' },
} as const;

const FORMATS = ['json', 'text', 'md', 'junit', 'html'] as const;

/** `pgplay report <run-id>`: a drill's report rebuilt from the run's journal, in any format. */
export async function reportCommand(argv: string[], write: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('report', argv, OPTIONS);
  if (positionals.length !== 1) throw usage('report takes one run id (pgplay history lists them)', 'report');
  const format = (values.format ?? 'text') as (typeof FORMATS)[number];
  if (!FORMATS.includes(format)) throw usage(`--format must be one of ${FORMATS.join(', ')}, got "${values.format}"`, 'report');
  const stateDir = values['state-dir'] !== undefined ? resolve(values['state-dir']) : defaultStateDir();
  const run = findRun(stateDir, positionals[0]!);
  const declared = run.header.report;
  const report = declared?.kind === 'drill' ? buildDrillReport(run, declared.outputs) : undefined;
  if (!report) {
    throw new PgplayError({ code: 'USAGE', message: `run ${run.header.runId} (${run.header.playbook}) declares no drill report`, expected: 'the id of a pitr-drill.yml run' });
  }
  const history = listDrills(stateDir, report.run.cluster);
  const stored = history.find((d) => d.run.id === report.run.id);
  // The trend as it was recorded when the drill ended (later drills do not change it).
  report.trend = stored?.trend ?? drillTrend(report, history);
  // The targets as they were when the drill ended (the inventory may have changed since).
  if (stored?.targets) report.targets = stored.targets;
  const upTo = history.filter((d) => d.run.started <= report.run.started && d.run.id !== report.run.id).map(summarize).concat(summarize(report));
  const text = { json: () => JSON.stringify(report, null, 2) + '\n', text: () => formatDrillReport(report), md: () => formatDrillMarkdown(report), junit: () => formatDrillJunit(report), html: () => formatDrillHtml(report, upTo) }[format]();
  write(text);
  return EXIT.OK;
}
