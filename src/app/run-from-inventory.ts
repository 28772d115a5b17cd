import { randomBytes } from 'node:crypto';
import type { PgplayError } from '../core/errors.js';
import type { Redactor } from '../core/redact.js';
import { DEFAULT_GRACE_MS, graceController } from '../engine/grace.js';
import type { RunEvent } from '../engine/events.js';
import { RunContext, type EngineOptions } from '../engine/run-context.js';
import { executeRun, type RunOutcome } from '../engine/run.js';
import { involvedHosts, startRun } from '../engine/start.js';
import { toPgplayError } from '../engine/step.js';
import { selectHosts } from '../load/hosts.js';
import { engineDeps } from './engine-deps.js';
import { openJournal, type RunJournal } from './journal.js';
import { parseDuration } from '../core/duration.js';
import type { EarlyConnections } from './early-connect.js';
import { loadRun, type LoadedRun } from './load-run.js';
import type { RunRequest } from './request.js';
import type { RunInventory } from './run-inventory.js';

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/**
 * The second part of run-playbook.ts's composition root, imported once the inventory is read and the
 * connections started: loads the rest of the run (exit 2 before touching any host), gives the engine its
 * collaborators, opens the journal and takes the locks, then lets the engine gather facts and run;
 * whatever happens, releases the locks, closes the transports and ends the journal.
 */
export async function runFromInventory(
  request: RunRequest,
  read: RunInventory,
  early: EarlyConnections,
  /** The scope in which the run's local transports share their command helpers. */
  helperScope: object,
): Promise<RunOutcome & { runId: string; redactor: Redactor; closed: Promise<void> }> {
  let loaded: LoadedRun;
  let defaultTimeoutMs: number;
  try {
    loaded = await loadRun(request, read);
    defaultTimeoutMs = parseDuration(request.timeout ?? '1h', '--timeout');
  } catch (e) {
    await early.close();
    throw e;
  }
  const { redactor, warn, resume } = loaded;
  const options: EngineOptions = {
    check: request.check,
    diff: request.diff,
    forks: request.forks ?? 10,
    yes: request.yes ?? false,
    limit: loaded.limit,
    tags: loaded.tags,
    from: loaded.from,
    defaultTimeoutMs,
    alreadyDone: request.alreadyDone,
    startedAt: request.startedAt,
  };
  const runId = request.runId ?? newRunId();
  const interrupt = request.signal ?? new AbortController().signal;
  const grace = graceController(interrupt, request.graceMs ?? DEFAULT_GRACE_MS);
  const journal: RunJournal = {};
  // Events from before the journal is open (a host key added by a connection opened early) go in once it is.
  const beforeJournal: RunEvent[] = [];
  // A key trusted on first use must never pass unnoticed: the human output shows no log events
  // unless --verbose, so the notice goes to stderr as well as into the events.
  const notice = (name: string, line: string) => {
    run.emitLog('connect', name, line);
    warn(`${name}: ${line}`);
  };
  // Until the RunContext exists only the early connections are open; release() closes whatever is. The
  // locks go first: releasing a host's lock takes its connection.
  let run: RunContext;
  const releaseLocks = async () => {
    grace.dispose();
    await journal.hostLocks?.release();
  };
  const closeConnections = async () => {
    await Promise.all([run?.closeTransports(), early.close()]);
  };
  const release = async () => {
    await releaseLocks();
    await closeConnections();
  };
  try {
    run = new RunContext(
      runId,
      loaded.playbook,
      loaded.playbookFile,
      loaded.playbookDir,
      loaded.inventory,
      loaded.inventoryFile,
      loaded.hosts,
      loaded.params,
      {},
      options,
      engineDeps(request, loaded, notice, (name) => early.take(name), helperScope),
      redactor,
      grace.signal,
      (event) => {
        if (journal.recorder) journal.recorder.event(event);
        else beforeJournal.push(event);
        request.onEvent(event);
      },
    );
    run.shellExport = request.shellExport;
    // Every host's SSH handshake (or local command helper) starts now, beside the locks and the journal,
    // unless it started once the inventory was read: which hosts the run reads is known only once the
    // engine has walked the playbook (engine/fact-hosts.ts), and a host it never uses costs a handshake.
    for (const name of involvedHosts(run)) if (!early.holds(name)) void run.transportFor(name).preconnect?.();
    await openJournal(request, loaded, run, journal);
  } catch (e) {
    await release();
    throw e;
  }
  for (const event of beforeJournal.splice(0)) journal.recorder?.event(event);
  if (resume) {
    warn(`resuming run ${resume.fromRunId}: ${resume.done.size} step/host pair${resume.done.size === 1 ? '' : 's'} already done will be skipped`);
    if (resume.playbookChanged) warn(`${loaded.playbookFile} changed since run ${resume.fromRunId}; the steps it finished are all still there`);
  }
  let error: PgplayError | undefined;
  let outcome: RunOutcome;
  let closed: Promise<void> | undefined;
  try {
    const select = (pattern: string | string[]) => selectHosts(pattern, loaded.hosts);
    await startRun(run, select, grace.signal);
    outcome = await executeRun(run, select, {
      interrupt,
      prior: resume?.done,
      resumedFrom: resume?.fromRunId,
      onRegistered:
        journal.recorder &&
        ((step, host, handler, name, value, index) => journal.recorder!.registered(step, host, handler, name, redactor.redactValue(value), index)),
    });
  } catch (e) {
    error = toPgplayError(e);
    throw e;
  } finally {
    await releaseLocks();
    // The journal ends now; the cluster's lock is released once the connections and helpers are closed.
    const connectionsClosed = closeConnections();
    closed = journal.recorder ? journal.recorder.finish(error, (value) => redactor.redactValue(value), connectionsClosed) : connectionsClosed;
    // Its caller awaits it later: a failure meanwhile is not an unhandled rejection (the caller still sees it).
    closed.catch(() => undefined);
    // A run that failed outside its steps reports once everything is closed, as before.
    if (error || !request.returnWhileClosing) await closed;
  }
  return { ...outcome, runId, redactor, closed };
}
