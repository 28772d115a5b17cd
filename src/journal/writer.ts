import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { errorPayload, PgplayError } from '../core/errors.js';
import type { RunEvent } from '../engine/events.js';
import { journalFile, runsDir } from './paths.js';
import type { JournalHeader, RegisteredRecord } from './types.js';

export interface JournalWriterOptions {
  /** How a file descriptor is flushed to disk; fsyncSync, tests count the calls. */
  sync?: (fd: number) => void;
}

/**
 * Appends one run's records as they happen. Writes are synchronous so the order on disk is the order
 * of events and nothing is left in a buffer when the process dies; a kill -9 loses at most the line
 * being written. Records must already be redacted: the writer stores what it is given.
 *
 * fsync, which only matters if the machine itself goes down, happens once per step that changed
 * something: after the last of its hosts reports, so a change recorded as done is on disk before the
 * next step starts (what --resume relies on to not redo it; a loop's items that report after every
 * host has, one sync per changed item), plus at the run's end (also an
 * interrupted or abandoned one). A result lost with the machine before it was synced only means that
 * host's step runs again; for a step that changed nothing, running again is only its check.
 */
export class JournalWriter {
  private fd: number | undefined;
  private ended = false;
  private failed = false;
  /** Hosts of the current step that have not reported yet. */
  private pending = new Set<string>();
  private currentStep: string | undefined;
  /** Whether a change was recorded since the last sync: only a change needs to be durable before the next step. */
  private dirty = false;
  private readonly onExit = (code: number) => this.abandon(code);

  private constructor(
    readonly file: string,
    private readonly runId: string,
    private readonly warn: (message: string) => void,
    private readonly sync: (fd: number) => void,
  ) {}

  /** Creates the journal with its header; a state directory that cannot be written stops the run before it starts. */
  static open(stateDir: string, header: JournalHeader, warn: (message: string) => void = () => {}, options: JournalWriterOptions = {}): JournalWriter {
    const file = journalFile(stateDir, header.runId);
    const sync = options.sync ?? fsyncSync;
    const writer = new JournalWriter(file, header.runId, warn, sync);
    try {
      mkdirSync(runsDir(stateDir), { recursive: true, mode: 0o700 });
      writer.fd = openSync(file, 'wx', 0o600);
      writeSync(writer.fd, JSON.stringify(header) + '\n');
      sync(writer.fd);
      fsyncDir(dirname(file), sync);
    } catch (e) {
      if (writer.fd !== undefined) closeSync(writer.fd);
      throw new PgplayError({
        code: 'USAGE',
        message: `cannot write the run journal ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        hint: 'the state directory must be writable (--state-dir or PGPLAY_STATE_DIR)',
      });
    }
    process.on('exit', writer.onExit);
    return writer;
  }

  event(e: RunEvent): void {
    switch (e.type) {
      case 'step-start':
        // A step whose hosts did not all report is made durable all the same before the next one starts.
        if (this.dirty) this.flush();
        this.currentStep = stepKey(e);
        this.pending = new Set(e.hosts);
        this.append(e, false);
        return;
      case 'step-result': {
        const ofCurrentStep = stepKey(e) === this.currentStep;
        if (ofCurrentStep) this.pending.delete(e.host);
        if (e.status === 'changed') this.dirty = true;
        // The last result of a step that changed something makes the step durable (a loop's later items
        // come after every host has reported: each changed one is synced as it comes); a result outside
        // the step in progress is not expected, and is synced at once rather than trusted to a count.
        this.append(e, !ofCurrentStep || (this.pending.size === 0 && this.dirty));
        return;
      }
      case 'run-end':
        this.ended = true;
        this.pending.clear();
        this.append(e, true);
        return;
      default:
        this.append(e, false);
    }
  }

  registered(record: Omit<RegisteredRecord, 'type'>): void {
    this.append({ type: 'registered', ...record }, false);
  }

  /**
   * Ends the journal. When the engine never emitted run-end (it threw), a run-end is recorded for it
   * so the journal never claims a run is still going.
   */
  close(error?: PgplayError, redact: <T>(value: T) => T = (value) => value): void {
    if (!this.ended && this.fd !== undefined) {
      this.event({
        type: 'run-end',
        runId: this.runId,
        status: statusOf(error?.exitCode ?? 1),
        exitCode: error?.exitCode ?? 1,
        recap: {},
        durationMs: 0,
        error: error ? redact(errorPayload(error)) : undefined,
        time: new Date().toISOString(),
      });
    }
    process.off('exit', this.onExit);
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // nothing left to lose: the run-end just written was fsynced with everything before it
      }
      this.fd = undefined;
    }
  }

  /** The process is leaving without close() (a second Ctrl-C calls process.exit): say how it ended. */
  private abandon(code: number): void {
    if (!this.ended && this.fd !== undefined) {
      const interrupted = code === 130;
      this.event({
        type: 'run-end',
        runId: this.runId,
        status: interrupted ? 'interrupted' : 'failed',
        exitCode: code,
        recap: {},
        durationMs: 0,
        error: {
          code: interrupted ? 'INTERRUPTED' : 'STEP_FAILED',
          message: interrupted ? 'interrupted: pgplay exited at once' : `pgplay exited (${code}) before the run ended`,
          exitCode: code,
        },
        // Only a second interruption (Ctrl-C twice) exits at once with 130: the first was journaled by nobody.
        ...(interrupted ? { interruptedBy: 'pgplay exited at once (interrupted twice)' } : {}),
        time: new Date().toISOString(),
      });
    }
    this.close();
  }

  private flush(): void {
    this.append(undefined, true);
  }

  /** Writes a record (if any) and, when asked, flushes everything written so far to disk. */
  private append(record: unknown, sync: boolean): void {
    if (this.fd === undefined || this.failed) return;
    try {
      if (record !== undefined) writeSync(this.fd, JSON.stringify(record) + '\n');
      if (sync) {
        this.sync(this.fd);
        this.dirty = false;
      }
    } catch (e) {
      // A full disk must not stop a DR procedure halfway; the run goes on and says the journal is incomplete.
      this.failed = true;
      this.warn(`the run journal ${this.file} could not be written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); it stops here`);
    }
  }
}

function stepKey(e: { step: string; handler: boolean }): string {
  return `${e.handler ? 'handler' : 'step'} ${e.step}`;
}

function fsyncDir(dir: string, sync: (fd: number) => void): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    sync(fd);
  } catch {
    // some filesystems do not allow fsync on directories; the file itself is synced
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The run-end status an exit code stands for (as executeRun reports them). */
function statusOf(exitCode: number): Extract<RunEvent, { type: 'run-end' }>['status'] {
  return exitCode === 130 ? 'interrupted' : exitCode === 3 ? 'refused' : exitCode === 2 ? 'invalid' : 'failed';
}
