import { userInfo, hostname } from 'node:os';
import type { PgplayError } from '../core/errors.js';
import type { RunEvent } from '../engine/events.js';
import { acquireClusterLock, describeHolder, type ClusterLock } from '../lock/cluster-lock.js';
import { processStartTime } from '../lock/process.js';
import { gitInfo } from './git.js';
import { JOURNAL_VERSION, type JournalHeader } from './types.js';
import { JournalWriter } from './writer.js';

export interface RecordingRequest {
  stateDir: string;
  runId: string;
  playbookFile: string;
  playbookSha256: string;
  inventoryFile: string;
  cluster: string;
  /** Already redacted. */
  params: Record<string, unknown>;
  check: boolean;
  options: JournalHeader['options'];
  /** The report the playbook declares, kept so it can be built from the journal. */
  report?: JournalHeader['report'];
  resumeOf?: string;
  /** Take over a stale lock. */
  force?: boolean;
  /**
   * Runs once the lock is taken and before the journal is opened (not in check mode): more locks
   * (on the cluster's hosts). A refusal there releases this lock and leaves no journal, like a refusal here.
   */
  afterLock?(): Promise<void>;
  /** The git probe of the playbook, when the caller started it early (it runs while the files are validated). */
  git?: Promise<JournalHeader['git']>;
  warn(message: string): void;
}

/**
 * A run's bookkeeping in the state directory: the cluster lock (not in check mode: a plan changes
 * nothing, so it may run beside a real run) and the journal. The lock is taken first so a refused run
 * leaves no journal behind to be mistaken for "the last run" by --resume.
 */
export class RunRecorder {
  private constructor(
    readonly journal: JournalWriter,
    readonly lock: ClusterLock | undefined,
  ) {}

  static async start(request: RecordingRequest): Promise<RunRecorder> {
    const lock = request.check
      ? undefined
      : acquireClusterLock(request.stateDir, request.cluster, { runId: request.runId, playbook: request.playbookFile }, { force: request.force });
    try {
      if (lock) await request.afterLock?.();
      if (lock?.tookOver) {
        request.warn(
          lock.tookOver === 'corrupt'
            ? `--force: replaced the unreadable lock file ${lock.path}`
            : `--force: took over the stale lock of ${describeHolder(lock.tookOver)}`,
        );
      }
      const header: JournalHeader = {
        type: 'journal',
        version: JOURNAL_VERSION,
        runId: request.runId,
        playbook: request.playbookFile,
        playbookSha256: request.playbookSha256,
        inventory: request.inventoryFile,
        cluster: request.cluster,
        params: request.params,
        check: request.check,
        options: request.options,
        ...(request.report ? { report: request.report } : {}),
        git: await (request.git ?? gitInfo(request.playbookFile)),
        resumeOf: request.resumeOf ?? null,
        pid: process.pid,
        procStart: processStartTime(process.pid),
        hostname: hostname(),
        user: userInfo().username,
        started: new Date().toISOString(),
      };
      return new RunRecorder(JournalWriter.open(request.stateDir, header, request.warn), lock);
    } catch (e) {
      lock?.release();
      throw e;
    }
  }

  event(e: RunEvent): void {
    this.journal.event(e);
  }

  registered(step: string, host: string, handler: boolean, name: string, value: unknown, index?: number): void {
    this.journal.registered({ step, host, handler, name, value, ...(index !== undefined ? { index } : {}) });
  }

  /**
   * Closes the journal (recording a run-end if the engine could not, its error through `redact`) and, once
   * `closed` has settled (the run's connections and helpers closing), releases the cluster's lock: the next
   * run starts only when nothing of this one is left on the servers.
   */
  finish(error?: PgplayError, redact?: <T>(value: T) => T, closed: Promise<void> = Promise.resolve()): Promise<void> {
    try {
      this.journal.close(error, redact);
    } catch (e) {
      this.lock?.release();
      throw e;
    }
    // However closing ended: a failure of it stays the caller's to see, as it is where there is no journal.
    return closed.finally(() => this.lock?.release());
  }
}
