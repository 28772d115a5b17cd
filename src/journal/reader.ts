import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PgplayError } from '../core/errors.js';
import type { RunEvent } from '../engine/events.js';
import { processAlive } from '../lock/process.js';
import { journalFile, RUN_ID_PATTERN, runsDir } from './paths.js';
import type { JournalHeader, RegisteredRecord, RunStatus } from './types.js';

type StepResult = Extract<RunEvent, { type: 'step-result' }>;
type RunEnd = Extract<RunEvent, { type: 'run-end' }>;

export interface JournalRun {
  file: string;
  header: JournalHeader;
  events: RunEvent[];
  registered: RegisteredRecord[];
  end?: RunEnd;
  status: RunStatus;
  counts: { ok: number; changed: number; skipped: number; failed: number };
}

/**
 * Reads one journal. A torn last line (the process died while writing it) is dropped; a torn line
 * anywhere else means the file was damaged and is an error.
 */
export function readJournal(file: string): JournalRun {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new PgplayError({ code: 'USAGE', message: `cannot read the run journal ${file}: ${(e as NodeJS.ErrnoException).code ?? e}` });
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const records: unknown[] = [];
  lines.forEach((line, i) => {
    try {
      records.push(JSON.parse(line));
    } catch {
      if (i !== lines.length - 1) {
        throw new PgplayError({ code: 'USAGE', message: `${file}:${i + 1}:1: the run journal is damaged (not JSON)` });
      }
    }
  });
  const header = records[0] as JournalHeader | undefined;
  if (!header || header.type !== 'journal' || typeof header.runId !== 'string') {
    throw new PgplayError({ code: 'USAGE', message: `${file}:1:1: not a pgplay run journal (no header)` });
  }
  const events: RunEvent[] = [];
  const registered: RegisteredRecord[] = [];
  for (const r of records.slice(1) as Array<RunEvent | RegisteredRecord>) {
    if (r.type === 'registered') registered.push(r);
    else events.push(r);
  }
  const end = events.findLast((e): e is RunEnd => e.type === 'run-end');
  const counts = { ok: 0, changed: 0, skipped: 0, failed: 0 };
  for (const e of events) if (e.type === 'step-result') counts[e.status]++;
  const status: RunStatus = end
    ? end.status
    : header.hostname === hostname() && processAlive(header.pid, header.procStart)
      ? 'running'
      : 'incomplete';
  return { file, header, events, registered, end, status, counts };
}

export function stepResults(run: JournalRun): StepResult[] {
  return run.events.filter((e): e is StepResult => e.type === 'step-result');
}

/** Every readable run, newest first; unreadable files are listed separately rather than hiding the rest. */
export function listRuns(stateDir: string): { runs: JournalRun[]; unreadable: Array<{ file: string; message: string }> } {
  let names: string[];
  try {
    names = readdirSync(runsDir(stateDir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { runs: [], unreadable: [] };
    throw new PgplayError({ code: 'USAGE', message: `cannot read the run journal directory ${runsDir(stateDir)}: ${(e as NodeJS.ErrnoException).code ?? e}` });
  }
  const runs: JournalRun[] = [];
  const unreadable: Array<{ file: string; message: string }> = [];
  for (const name of names) {
    if (!name.endsWith('.jsonl') || !RUN_ID_PATTERN.test(name.slice(0, -'.jsonl'.length))) continue;
    const file = join(runsDir(stateDir), name);
    try {
      runs.push(readJournal(file));
    } catch (e) {
      unreadable.push({ file, message: (e as Error).message });
    }
  }
  runs.sort((a, b) => (a.header.started === b.header.started ? (a.header.runId < b.header.runId ? 1 : -1) : a.header.started < b.header.started ? 1 : -1));
  return { runs, unreadable };
}

export function findRun(stateDir: string, runId: string): JournalRun {
  if (!RUN_ID_PATTERN.test(runId)) {
    throw new PgplayError({ code: 'USAGE', message: `"${runId}" is not a run id`, expected: 'an id as pgplay history lists it, e.g. 20240101T030000-1a2b3c' });
  }
  const file = journalFile(stateDir, runId);
  if (!existsSync(file)) {
    throw new PgplayError({ code: 'USAGE', message: `no run ${runId} in the journal at ${runsDir(stateDir)}`, hint: 'pgplay history lists the runs' });
  }
  return readJournal(file);
}
