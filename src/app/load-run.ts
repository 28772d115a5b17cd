import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { shippedActions as actions } from '../actions/registry.js';
import { PgplayError } from '../core/errors.js';
import type { Redactor } from '../core/redact.js';
import { checkSecretValue, locateSecretRefs } from '../engine/secret-checks.js';
import { checkSelection, hasStep } from '../engine/selection.js';
import type { gitInfo } from '../journal/git.js';
import { loadResume, type ResumeState } from '../journal/resume.js';
import { resolveHosts } from '../load/hosts.js';
import { resolveParams } from '../load/params.js';
import { loadPlaybook } from '../load/playbook.js';
import type { Host, Inventory } from '../model/inventory.js';
import type { Playbook } from '../model/playbook.js';
import type { RunRequest } from './request.js';
import type { RunInventory } from './run-inventory.js';

/** Everything a run needs from its files, checked: nothing here touches a host. */
export interface LoadedRun {
  playbookFile: string;
  playbookDir: string;
  playbookSha256: string;
  inventoryFile: string;
  inventory: Inventory;
  playbook: Playbook;
  hosts: Record<string, Host>;
  params: Record<string, unknown>;
  /** --limit as host names, --tags and --from: given now, else those of the run resumed. */
  limit?: string[];
  /** --limit as given (the journal keeps it so, for a later --resume). */
  limitAsGiven?: string[];
  tags?: string[];
  from?: string;
  resume?: ResumeState;
  redactor: Redactor;
  resolveSecret(ref: unknown): Promise<string | undefined>;
  /** An included playbook, loaded and checked as this one. */
  loadInclude(file: string, fromDir: string): Promise<Playbook>;
  /** The playbook's git commit, read by a child process started at once (a journaled run only). */
  git?: ReturnType<typeof gitInfo>;
  /** Notices for the human, redacted. */
  warn(message: string): void;
}

/**
 * Loads and checks the rest of a run's inputs, once its inventory is read (run-inventory.ts), exit 2
 * before touching any host: the playbook and its secrets, the run it resumes, the params, --from, --tags
 * and --limit (against the includes too).
 */
export async function loadRun(request: RunRequest, read: RunInventory): Promise<LoadedRun> {
  const { playbookFile, inventoryFile, inventory, cache, git, redactor, resolveSecret } = read;
  const { playbook, doc: playbookDoc } = await loadPlaybook(playbookFile, { actions, inventory, check: request.check, cache });
  await checkStepSecrets(playbook, playbookFile, resolveSecret);
  const warn = (message: string) => request.warn?.(redactor.redact(message));
  const playbookSha256 = createHash('sha256').update(await readFile(playbookFile)).digest('hex');
  const resume = request.resume !== undefined ? resumeState(request, playbookFile, playbookSha256, playbook, warn) : undefined;
  const limit = request.limit ?? resume?.options.limit;
  const tags = request.tags ?? resume?.options.tags;
  const from = request.from ?? resume?.options.from;
  // A secret param is known to the redactor before its value can be quoted by a param error.
  for (const [name, raw] of Object.entries(request.params)) if (playbook.params?.[name]?.secret) redactor.add(raw);
  const params = resolveParams(playbook.params ?? {}, { ...resume?.params, ...request.params }, (name) => playbookDoc.position(['params', name]));
  const hosts = resolveHosts(inventory);
  // One load per file and run: the engine's walk for the hosts to read, the pre-flight and the steps take
  // the same playbook (what was checked is what runs), and each load validates the file again.
  const includes = new Map<string, Promise<Playbook>>();
  const loadInclude = (file: string, fromDir: string): Promise<Playbook> => {
    const path = resolve(fromDir, file);
    let loaded = includes.get(path);
    if (!loaded) {
      // Its steps' secrets as the top playbook's: a run reaching it is refused before its first change (the
      // pre-flight loads every include the run may enter), not failed at the step after the steps before it ran.
      loaded = loadPlaybook(path, { actions, inventory, included: true, check: request.check, cache }).then(async (l) => {
        await checkStepSecrets(l.playbook, path, resolveSecret);
        return l.playbook;
      });
      includes.set(path, loaded);
    }
    return loaded;
  };
  if (from && !(await hasStep(playbook, dirname(playbookFile), from, loadInclude))) {
    throw new PgplayError({ code: 'USAGE', message: `--from: no step with id "${from}" in ${playbookFile}` });
  }
  const selection = await checkSelection(playbook, playbookFile, hosts, { limit, tags }, loadInclude);
  for (const [name, def] of Object.entries(playbook.params ?? {})) {
    if (def.secret && typeof params[name] === 'string') redactor.add(params[name] as string);
  }
  return {
    playbookFile,
    playbookDir: dirname(playbookFile),
    playbookSha256,
    inventoryFile,
    inventory,
    playbook,
    hosts,
    params,
    limit: selection.limit,
    limitAsGiven: limit,
    tags,
    from,
    resume,
    redactor,
    resolveSecret,
    loadInclude,
    git,
    warn,
  };
}

/** Every secret a playbook's steps and handlers name is resolved and usable (engine/secret-checks.ts), else SEMANTIC (exit 2). */
async function checkStepSecrets(playbook: Playbook, file: string, resolveSecret: (ref: unknown) => Promise<string | undefined>): Promise<void> {
  for (const step of [...playbook.steps, ...Object.values(playbook.handlers ?? {})]) {
    for (const located of locateSecretRefs(step, step.id ?? '', { secretKeysOnly: true })) checkSecretValue(`${file}: step`, located, await resolveSecret(located.ref));
  }
}

function resumeState(request: RunRequest, playbookFile: string, sha256: string, playbook: Playbook, warn: (message: string) => void): ResumeState {
  if (!request.stateDir) throw new PgplayError({ code: 'USAGE', message: '--resume needs the run journal (a state directory)' });
  const state = loadResume(request.stateDir, request.resume!, playbookFile, sha256, playbook);
  for (const [name, value] of Object.entries(request.params)) {
    const before = state.params[name];
    if (before !== undefined && before !== value) {
      // Done steps are not redone: a value they rendered keeps its old form until a full run.
      warn(`param ${name} was "${before}" in run ${state.fromRunId}, now "${value}": the steps that run finished keep what they did with the old value`);
    }
  }
  const owed = state.maskedParams.filter((name) => !(name in request.params) && playbook.params?.[name]?.default === undefined);
  if (owed.length) {
    throw new PgplayError({
      code: 'USAGE',
      message: `--resume: secret param${owed.length === 1 ? '' : 's'} ${owed.join(', ')} of run ${state.fromRunId} ${owed.length === 1 ? 'is' : 'are'} not kept in the journal`,
      expected: owed.map((n) => `-p ${n}=...`).join(' '),
    });
  }
  return state;
}
