import { join } from 'node:path';

export function runsDir(stateDir: string): string {
  return join(stateDir, 'runs');
}

export function journalFile(stateDir: string, runId: string): string {
  return join(runsDir(stateDir), `${runId}.jsonl`);
}

/** Run ids are timestamps with a random suffix (see newRunId in app/run-from-inventory.ts); nothing else may name a journal file. */
export const RUN_ID_PATTERN = /^\d{8}T\d{6}-[0-9a-f]+$/;
