import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { shippedActions as actions } from '../actions/registry.js';
import { PgplayError } from '../core/errors.js';
import { Redactor } from '../core/redact.js';
import { checkSecretValue, locateSecretRefs } from '../engine/secret-checks.js';
import { createSecretResolver } from '../engine/secrets.js';
import { checkSelection, hasStep } from '../engine/selection.js';
import { gitInfo } from '../journal/git.js';
import { loadResume, type ResumeState } from '../journal/resume.js';
import { resolveHosts } from '../load/hosts.js';
import { loadInventory } from '../load/inventory.js';
import { parseCacheIn } from '../load/parse-cache.js';
import { resolveParams } from '../load/params.js';
import { loadPlaybook } from '../load/playbook.js';
import type { Host, Inventory } from '../model/inventory.js';
import { BUILD_STAMP } from '../schema/build-stamp.js';
import type { Playbook } from '../model/playbook.js';
import type { RunRequest } from './request.js';

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
 * Loads and checks every input of a run, exit 2 before touching any host: the inventory and every
 * secret it references, the playbook and its secrets, the run it resumes, the params, --from, --tags
 * and --limit (against the includes too).
 */
export async function loadRun(request: RunRequest): Promise<LoadedRun> {
  const playbookFile = resolve(request.playbookFile);
  const inventoryFile = resolve(request.inventoryFile);
  // git runs as a child process: started now, it is done by the time the journal is opened.
  const git = request.stateDir ? gitInfo(playbookFile) : undefined;
  // Unchanged files are neither parsed nor validated again (load/parse-cache.ts); a run without a state directory keeps no cache.
  const cache = request.stateDir ? parseCacheIn(request.stateDir, BUILD_STAMP) : undefined;
  const { inventory } = await loadInventory(inventoryFile, cache);
  const redactor = request.redactor ?? new Redactor();
  const resolveSecret = createSecretResolver(redactor, request.env);
  // Resolve every secret the inventory references first: a missing one fails before any host is
  // touched, and each value is known to the redactor before any message (even a usage error) can quote it.
  // Each is also checked (no line break, not empty): exit 2 before any step, never at the step using it.
  for (const located of locateSecretRefs(inventory)) checkSecretValue(`inventory ${inventoryFile}:`, located, await resolveSecret(located.ref));
  await request.onInventory?.(inventory, resolveSecret);
  const { playbook, doc: playbookDoc } = await loadPlaybook(playbookFile, { actions, inventory, check: request.check, cache });
  for (const step of [...playbook.steps, ...Object.values(playbook.handlers ?? {})]) {
    for (const located of locateSecretRefs(step, step.id ?? '', { secretKeysOnly: true })) checkSecretValue(`${playbookFile}: step`, located, await resolveSecret(located.ref));
  }
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
  const loadInclude = async (file: string, fromDir: string) => (await loadPlaybook(resolve(fromDir, file), { actions, inventory, included: true, check: request.check, cache })).playbook;
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
