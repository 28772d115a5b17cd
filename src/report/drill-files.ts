/** The files of a drill report: JSON, text, Markdown, JUnit XML and HTML beside each other. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { formatDrillReport, type DrillReport, type DrillSummary } from './drill.js';
import { formatDrillHtml } from './drill-html.js';
import { formatDrillJunit } from './drill-junit.js';
import { formatDrillMarkdown } from './drill-markdown.js';

export interface DrillReportFiles {
  json: string;
  text: string;
  markdown: string;
  junit: string;
  html: string;
}

/**
 * The files of a drill report beside each other: <base>.json, .txt, .md, .junit.xml and .html, where
 * the base is --report FILE without its .json, or <state dir>/drills/<run id> for the stored copy.
 */
export function drillReportPaths(stateDir: string, runId: string, flag?: string): DrillReportFiles {
  const json = flag ?? join(stateDir, 'drills', `${runId}.json`);
  const base = json.endsWith('.json') ? json.slice(0, -'.json'.length) : json;
  return { json, text: `${base}.txt`, markdown: `${base}.md`, junit: `${base}.junit.xml`, html: `${base}.html` };
}

export async function writeDrillReport(report: DrillReport, paths: DrillReportFiles, history: DrillSummary[] = []): Promise<void> {
  await mkdir(dirname(paths.json), { recursive: true, mode: 0o700 });
  await writeFile(paths.json, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 });
  await writeFile(paths.text, formatDrillReport(report), { mode: 0o600 });
  await writeFile(paths.markdown, formatDrillMarkdown(report), { mode: 0o600 });
  await writeFile(paths.junit, formatDrillJunit(report), { mode: 0o600 });
  await writeFile(paths.html, formatDrillHtml(report, history), { mode: 0o600 });
}
