/**
 * `--resume [run-id]`: the id is optional, which parseArgs cannot express, and an id that names no
 * run must say so plainly ("no such run") before anything else is loaded.
 */
import { existsSync } from 'node:fs';
import { PgplayError } from '../core/errors.js';
import { journalFile, RUN_ID_PATTERN, runsDir } from '../journal/paths.js';

/**
 * The word after --resume is its run id when it looks like one, or when it cannot be the playbook
 * (not an option, no .yml, no file of that name): `--resume bogus` then says "no such run: bogus"
 * instead of taking bogus for a second playbook. Otherwise --resume means the last run.
 */
export function normaliseResume(argv: string[], isPlaybook: (word: string) => boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a !== '--resume') {
      out.push(a);
      continue;
    }
    const next = argv[i + 1];
    const isId = next !== undefined && !next.startsWith('-') && (RUN_ID_PATTERN.test(next) || !isPlaybook(next));
    if (isId) {
      out.push(`--resume=${next}`);
      i++;
    } else out.push('--resume=last');
  }
  return out;
}

/** Refuses (exit 2) a --resume id that no journal in the state directory has. */
export function assertRunExists(stateDir: string, runId: string): void {
  if (RUN_ID_PATTERN.test(runId) && existsSync(journalFile(stateDir, runId))) return;
  throw new PgplayError({
    code: 'USAGE',
    message: `no such run: ${runId}`,
    expected: `the id of a run in ${runsDir(stateDir)}, e.g. 20240101T030000-1a2b3c`,
    hint: 'pgplay history lists the runs and their ids (same --state-dir); --resume without an id resumes the last run of the playbook',
  });
}
