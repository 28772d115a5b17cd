import { MASK, type Redactor } from '../core/redact.js';
import type { RunContext } from '../engine/run-context.js';
import { RunRecorder } from '../journal/recorder.js';
import { acquireHostLocks, lockedHosts, type HostLocks } from '../lock/host-lock.js';
import type { Playbook } from '../model/playbook.js';
import { withoutReadAhead } from '../transports/read-ahead-cache.js';
import type { LoadedRun } from './load-run.js';
import type { RunRequest } from './request.js';

/** A run's journal and the locks that come with it: the state directory's and the cluster's hosts'. */
export interface RunJournal {
  recorder?: RunRecorder;
  hostLocks?: HostLocks;
}

/**
 * Opens the run's journal under the state directory (none without one: engine tests), which takes the
 * cluster lock there, then locks the cluster's own hosts too: operators with other state directories
 * are excluded. On failure whatever was taken is released by the caller from `taken`.
 */
export async function openJournal(request: RunRequest, loaded: LoadedRun, run: RunContext, taken: RunJournal): Promise<void> {
  if (!request.stateDir) return;
  const { hosts, inventory, redactor, warn } = loaded;
  taken.recorder = await RunRecorder.start({
    stateDir: request.stateDir,
    runId: run.runId,
    playbookFile: loaded.playbookFile,
    playbookSha256: loaded.playbookSha256,
    inventoryFile: loaded.inventoryFile,
    cluster: inventory.cluster,
    params: journalParams(loaded.params, loaded.playbook.params, redactor),
    check: request.check,
    options: { limit: loaded.limitAsGiven, tags: loaded.tags, from: loaded.from, timeout: request.timeout },
    report: loaded.playbook.report,
    resumeOf: loaded.resume?.fromRunId,
    force: request.force,
    git: loaded.git,
    warn,
    afterLock: async () => {
      if (!(request.lockHosts ?? request.createTransport === undefined)) return;
      // The lock's commands are no step's change: through the read-ahead cache they would make the first
      // step drop every read-ahead answer (it takes any command for one that may have changed the host).
      taken.hostLocks = await acquireHostLocks(lockedHosts(hosts, inventory), inventory, (name) => withoutReadAhead(run.transportFor(name)), {
        runId: run.runId,
        playbook: loaded.playbookFile,
        force: request.force,
        warn,
        reconnect: (host) => run.deps.createTransport(host),
      });
    },
  });
}

/** Params as the journal keeps them: secret ones masked outright, the rest through the redactor. */
function journalParams(params: Record<string, unknown>, defs: Playbook['params'], redactor: Redactor): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(params)) out[name] = defs?.[name]?.secret ? MASK : redactor.redactValue(value);
  return out;
}
