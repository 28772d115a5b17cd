import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { actions, getAction } from '../actions/registry.js';
import { parseDuration } from '../core/duration.js';
import { PgplayError } from '../core/errors.js';
import { SHIPPED_TEMPLATES } from '../core/paths.js';
import { MASK, Redactor } from '../core/redact.js';
import { gitInfo } from '../journal/git.js';
import { RunRecorder } from '../journal/recorder.js';
import { loadResume, type ResumeState } from '../journal/resume.js';
import { acquireHostLocks, lockedHosts, type HostLocks } from '../lock/host-lock.js';
import { uncached } from '../transports/read-cache.js';
import { loadInventory } from '../load/inventory.js';
import { loadPlaybook } from '../load/playbook.js';
import { resolveParams } from '../load/params.js';
import { resolveHosts, selectHosts } from '../load/hosts.js';
import type { HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import type { Playbook, Step } from '../model/playbook.js';
import { connectPostgres } from '../postgres/client.js';
import { createRenderer } from '../render/index.js';
import { createTransport } from '../transports/index.js';
import type { Transport } from '../transports/types.js';
import type { RunEvent } from './events.js';
import { claimsRefusal } from './claims.js';
import { gatherFacts } from './facts.js';
import { refuseLayoutContradictions } from './layout-guard.js';
import { mapLimit } from './pool.js';
import { RunContext, type EngineDeps, type EngineOptions } from './run-context.js';
import { readAheadAtStart } from './readahead.js';
import { executeRun, targetHosts, type RunOutcome } from './run.js';
import { globalScope } from './scope.js';
import { checkSecretValue, locateSecretRefs } from './secret-checks.js';
import { createSecretResolver } from './secrets.js';
import { checkSelection } from './selection.js';
import { toPgplayError } from './step.js';

export interface RunRequest {
  playbookFile: string;
  inventoryFile: string;
  params: Record<string, string>;
  check: boolean;
  diff: boolean;
  forks?: number;
  yes?: boolean;
  limit?: string[];
  tags?: string[];
  from?: string;
  timeout?: string;
  alreadyDone?: Set<string>;
  runId?: string;
  /** Ctrl-C: stops launching steps at once; running steps get graceMs before they are aborted. */
  signal?: AbortSignal;
  /** How long running steps may go on after the signal aborts (default 10 s). */
  graceMs?: number;
  /** Journal and cluster lock live here; without it the run keeps neither (engine tests). */
  stateDir?: string;
  /** Resume a run: its id, or 'last' for the newest run of this playbook. Needs stateDir. */
  resume?: string;
  /** Take over a stale cluster lock. */
  force?: boolean;
  /**
   * Also lock the cluster's primary and repository hosts (default: with a state directory, unless the
   * caller substitutes the transports: engine tests on the fake transport).
   */
  lockHosts?: boolean;
  /** The redactor to register secrets with; the CLI passes the process-wide one so its error output is redacted too. */
  redactor?: Redactor;
  /** Notices for the human (lock taken over, resuming, journal trouble); already redacted. */
  warn?(message: string): void;
  onEvent(event: RunEvent): void;
  ask?(question: string): Promise<boolean>;
  /** Tests substitute transports (e.g. the fake one) and fact gathering. */
  createTransport?(host: Host): Transport;
  gatherFacts?(host: Host, transport: Transport): Promise<HostFacts>;
  env?: NodeJS.ProcessEnv;
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/** Loads and validates everything (exit 2 before touching any host), then gathers facts and runs. */
export async function runPlaybook(request: RunRequest): Promise<RunOutcome & { runId: string; redactor: Redactor }> {
  const playbookFile = resolve(request.playbookFile);
  const inventoryFile = resolve(request.inventoryFile);
  // git runs as a child process: started now, it is done by the time the journal is opened.
  const git = request.stateDir ? gitInfo(playbookFile) : undefined;
  const loadedInventory = await loadInventory(inventoryFile);
  const inventory = loadedInventory.inventory;
  const redactor = request.redactor ?? new Redactor();
  const resolveSecret = createSecretResolver(redactor, request.env);
  // Resolve every secret the inventory references first: a missing one fails before any host is
  // touched, and each value is known to the redactor before any message (even a usage error) can quote it.
  // Each is also checked (no line break, not empty): exit 2 before any step, never at the step using it.
  for (const located of locateSecretRefs(inventory)) checkSecretValue(`inventory ${inventoryFile}:`, located, await resolveSecret(located.ref));
  const { playbook, doc: playbookDoc } = await loadPlaybook(playbookFile, { actions, inventory, check: request.check });
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
  if (from && !playbook.steps.some((s) => s.id === from)) {
    throw new PgplayError({ code: 'USAGE', message: `--from: no step with id "${from}" in ${playbookFile}` });
  }
  const loadInclude = async (file: string, fromDir: string) => (await loadPlaybook(resolve(fromDir, file), { actions, inventory, included: true, check: request.check })).playbook;
  const selection = await checkSelection(playbook, playbookFile, hosts, { limit, tags }, (file) => loadInclude(file, dirname(playbookFile)));

  for (const [name, def] of Object.entries(playbook.params ?? {})) {
    if (def.secret && typeof params[name] === 'string') redactor.add(params[name] as string);
  }

  const playbookDir = dirname(playbookFile);
  const renderer = createRenderer({ templateDirs: [resolve(playbookDir, 'templates'), playbookDir, SHIPPED_TEMPLATES] });
  const deps: EngineDeps = {
    renderer,
    getAction,
    createTransport:
      request.createTransport ??
      ((host) =>
        createTransport(host, {
          hosts,
          resolveSecret,
          // A key trusted on first use must never pass unnoticed: the human output shows no log
          // events unless --verbose, so the notice goes to stderr as well as into the events.
          notice: (name, line) => {
            run.emitLog('connect', name, line);
            warn(`${name}: ${line}`);
          },
        })),
    gatherFacts: request.gatherFacts ?? gatherFacts,
    resolveSecret,
    connectPostgres: async (transport, host, options) =>
      connectPostgres(transport, host, { ...options, password: await resolveSecret(host.postgres.password) }),
    ask: request.ask,
    loadInclude,
  };
  const options: EngineOptions = {
    check: request.check,
    diff: request.diff,
    forks: request.forks ?? 10,
    yes: request.yes ?? false,
    limit: selection.limit,
    tags,
    from,
    defaultTimeoutMs: parseDuration(request.timeout ?? '1h', '--timeout'),
    alreadyDone: request.alreadyDone,
  };
  const runId = request.runId ?? newRunId();
  const interrupt = request.signal ?? new AbortController().signal;
  const grace = graceController(interrupt, request.graceMs ?? DEFAULT_GRACE_MS);
  const run = new RunContext(
    runId,
    playbook,
    playbookFile,
    playbookDir,
    inventory,
    inventoryFile,
    hosts,
    params,
    {},
    options,
    deps,
    redactor,
    grace.signal,
    (event) => {
      recorder?.event(event);
      request.onEvent(event);
    },
  );

  let hostLocks: HostLocks | undefined;
  let recorder: RunRecorder | undefined;
  try {
    recorder = request.stateDir
      ? await RunRecorder.start({
          stateDir: request.stateDir,
          runId,
          playbookFile,
          playbookSha256,
          inventoryFile,
          cluster: inventory.cluster,
          params: journalParams(params, playbook.params, redactor),
          check: request.check,
          options: { limit, tags, from, timeout: request.timeout },
          report: playbook.report,
          resumeOf: resume?.fromRunId,
          force: request.force,
          git,
          warn,
          // The cluster's own hosts are locked too: operators with other state directories are excluded.
          afterLock: async () => {
            if (!(request.lockHosts ?? request.createTransport === undefined)) return;
            // The lock's commands are no step's change: through the read cache they would make the first
            // step drop every read-ahead answer (it takes any command for one that may have changed the host).
            hostLocks = await acquireHostLocks(lockedHosts(hosts, inventory), inventory, (name) => uncached(run.transportFor(name)), {
              runId,
              playbook: playbookFile,
              force: request.force,
              warn,
              reconnect: (host) => deps.createTransport(host),
            });
          },
        })
      : undefined;
  } catch (e) {
    grace.dispose();
    await hostLocks?.release();
    await run.closeTransports();
    throw e;
  }
  if (resume) {
    warn(`resuming run ${resume.fromRunId}: ${resume.done.size} step/host pair${resume.done.size === 1 ? '' : 's'} already done will be skipped`);
    if (resume.playbookChanged) warn(`${playbookFile} changed since run ${resume.fromRunId}; the steps it finished are all still there`);
  }
  let error: PgplayError | undefined;
  try {
    run.vars = renderer.renderValue({ ...(inventory.vars ?? {}), ...(playbook.vars ?? {}) }, globalScope(run.scopeSources()), 'vars');
    const involved = Object.keys(hosts).filter((h) => !selection.limit || selection.limit.includes(h));
    const select = (pattern: string | string[]) => selectHosts(pattern, hosts);
    const stepHosts = (step: Step, id: string) => targetHosts(run, select, involved, step, id);
    const readahead = { signal: grace.signal, timeoutMs: options.defaultTimeoutMs };
    await mapLimit(involved, options.forks, (name) => Promise.all([run.refreshFacts(name), readAheadAtStart(run, name, stepHosts, readahead)]));
    refuseLayoutContradictions(run.facts, involved);
    const contradicted = claimsRefusal(hosts, run.facts, involved);
    if (contradicted) throw contradicted;
    const outcome = await executeRun(run, select, {
      interrupt,
      prior: resume?.done,
      resumedFrom: resume?.fromRunId,
      onRegistered:
        recorder && ((step, host, handler, name, value, index) => recorder.registered(step, host, handler, name, redactor.redactValue(value), index)),
    });
    return { ...outcome, runId, redactor };
  } catch (e) {
    error = toPgplayError(e);
    throw e;
  } finally {
    grace.dispose();
    await hostLocks?.release();
    await run.closeTransports();
    recorder?.finish(error, (value) => redactor.redactValue(value));
  }
}

/** Running steps may finish within this long after Ctrl-C before they are aborted. */
export const DEFAULT_GRACE_MS = 10_000;

/** A signal that aborts graceMs after `interrupt` does: what running steps see. */
function graceController(interrupt: AbortSignal, graceMs: number): { signal: AbortSignal; dispose(): void } {
  const hard = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const onInterrupt = () => {
    timer = setTimeout(() => hard.abort(interrupt.reason), graceMs);
  };
  if (interrupt.aborted) hard.abort(interrupt.reason);
  else interrupt.addEventListener('abort', onInterrupt, { once: true });
  return {
    signal: hard.signal,
    dispose() {
      clearTimeout(timer);
      interrupt.removeEventListener('abort', onInterrupt);
    },
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

/** Params as the journal keeps them: secret ones masked outright, the rest through the redactor. */
function journalParams(params: Record<string, unknown>, defs: Playbook['params'], redactor: Redactor): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(params)) out[name] = defs?.[name]?.secret ? MASK : redactor.redactValue(value);
  return out;
}
