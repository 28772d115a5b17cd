import { MASK } from '../core/redact.js';
import { PgplayError, PgplayErrors } from '../core/errors.js';
import { priorKey, type PriorResult } from '../engine/prior.js';
import type { Playbook } from '../model/playbook.js';
import { findRun, listRuns, stepResults, type JournalRun } from './reader.js';

export type { PriorResult };

export interface ResumeState {
  fromRunId: string;
  /** Keyed by doneKey(): the step@host pairs that succeeded, across the whole chain of resumed runs. */
  done: Map<string, PriorResult>;
  /** The original run's params as -p strings, minus the redacted ones. */
  params: Record<string, string>;
  /** Secret params the journal cannot give back. */
  maskedParams: string[];
  options: { limit?: string[]; tags?: string[]; from?: string };
  /** The playbook file differs from the one that ran (its done steps are all still there). */
  playbookChanged: boolean;
}

/** Steps and handlers live in separate namespaces: a handler may share a name with a step id. */
export const doneKey = priorKey;

/**
 * Finds the run to resume (an id, or 'last': the newest non-check run of this playbook) and works out
 * what it already did. Refuses (exit 2) a run that succeeded, a plan, another playbook's run, and a
 * playbook whose done steps were renamed or removed; refuses (exit 3) a run that is still going.
 */
export function loadResume(stateDir: string, selector: string, playbookFile: string, playbookSha256: string, playbook: Playbook): ResumeState {
  const run = selectRun(stateDir, selector, playbookFile);
  const id = run.header.runId;
  if (run.header.playbook !== playbookFile) {
    throw new PgplayError({
      code: 'USAGE',
      message: `run ${id} ran ${run.header.playbook}, not ${playbookFile}`,
      hint: `resume it with: pgplay run ${run.header.playbook} --resume ${id}`,
    });
  }
  if (run.header.check) {
    throw new PgplayError({ code: 'USAGE', message: `run ${id} was a check-mode run (plan); it changed nothing and cannot be resumed` });
  }
  if (run.status === 'ok') {
    throw new PgplayError({
      code: 'USAGE',
      message: `run ${id} completed successfully; there is nothing to resume`,
      hint: 'run the playbook again without --resume to converge once more',
    });
  }
  if (run.status === 'running') {
    throw new PgplayError({ code: 'LOCK', message: `run ${id} is still running (pid ${run.header.pid} on ${run.header.hostname})` });
  }

  const done = doneInChain(stateDir, run);
  const missing: PgplayError[] = [];
  for (const key of done.keys()) {
    const problem = missingStep(key, playbook);
    if (problem) missing.push(new PgplayError({ code: 'USAGE', message: `cannot resume run ${id}: ${problem}`, hint: 'restore the step id, or start a fresh run without --resume' }));
  }
  const unique = [...new Map(missing.map((e) => [e.message, e])).values()];
  if (unique.length === 1) throw unique[0]!;
  if (unique.length > 1) throw new PgplayErrors(unique);

  const params: Record<string, string> = {};
  const maskedParams: string[] = [];
  for (const [name, value] of Object.entries(run.header.params ?? {})) {
    if (!playbook.params?.[name]) continue;
    if (typeof value === 'string' && value.includes(MASK)) maskedParams.push(name);
    else if (value !== null && value !== undefined) params[name] = String(value);
  }
  return {
    fromRunId: id,
    done,
    params,
    maskedParams,
    options: run.header.options ?? {},
    playbookChanged: run.header.playbookSha256 !== playbookSha256,
  };
}

function selectRun(stateDir: string, selector: string, playbookFile: string): JournalRun {
  if (selector !== 'last') return findRun(stateDir, selector);
  const run = listRuns(stateDir).runs.find((r) => r.header.playbook === playbookFile && !r.header.check);
  if (!run) {
    throw new PgplayError({
      code: 'USAGE',
      message: `--resume: no earlier run of ${playbookFile} in the journal at ${stateDir}`,
      hint: 'pgplay history lists the runs; give a run id with --resume ID',
    });
  }
  return run;
}

/**
 * Succeeded pairs of a run and of every run it resumed: a resumed run reports pairs done earlier as
 * skipped, so the earlier journals stay the record of them.
 */
function doneInChain(stateDir: string, last: JournalRun): Map<string, PriorResult> {
  const chain: JournalRun[] = [last];
  const seen = new Set([last.header.runId]);
  for (let r = last; r.header.resumeOf; ) {
    if (seen.has(r.header.resumeOf)) break;
    try {
      r = findRun(stateDir, r.header.resumeOf);
    } catch (e) {
      throw new PgplayError({
        code: 'USAGE',
        message: `cannot resume run ${last.header.runId}: it continues run ${r.header.resumeOf}, whose journal is missing or unreadable (${(e as Error).message})`,
      });
    }
    seen.add(r.header.runId);
    chain.unshift(r);
  }
  const done = new Map<string, PriorResult>();
  for (const run of chain) {
    const registered = new Map<string, Record<string, unknown>>();
    for (const rec of run.registered) {
      const key = doneKey(rec.step, rec.host, rec.handler, rec.index);
      registered.set(key, { ...registered.get(key), [rec.name]: rec.value });
    }
    for (const e of stepResults(run)) {
      if (e.status !== 'ok' && e.status !== 'changed') continue;
      const key = doneKey(e.step, e.host, e.handler, e.index);
      done.set(key, { status: e.status, registered: registered.get(key) ?? {}, ...(e.index !== undefined ? { item: e.item } : {}) });
    }
  }
  return done;
}

/** Why a done pair no longer matches the playbook, or undefined when its step is still there. */
function missingStep(key: string, playbook: Playbook): string | undefined {
  const handler = key.startsWith('handler:');
  const at = key.lastIndexOf('@');
  // A loop's item is step[index]: the step is what must still be there.
  const id = key.slice(handler ? 'handler:'.length : 0, at).replace(/\[\d+\]$/, '');
  const host = key.slice(at + 1);
  if (handler) {
    return playbook.handlers?.[id] ? undefined : `handler "${id}" ran on ${host} in that run but the playbook no longer has it (renamed or removed)`;
  }
  // Steps of an included playbook are named include-id/step-id (include-id[index]/step-id for a looped
  // include); the include step must still be there.
  const top = id.split('/')[0]!.replace(/\[\d+\]$/, '');
  return playbook.steps.some((s) => s.id === top) ? undefined : `step "${top}" succeeded on ${host} in that run but the playbook no longer has it (renamed or removed)`;
}
