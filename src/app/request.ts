import type { Redactor } from '../core/redact.js';
import type { RunEvent } from '../engine/events.js';
import type { ShellExportRecorder } from '../engine/shell-export.js';
import type { FactArea, HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import type { Transport } from '../transports/types.js';

/** What runs a playbook: the CLI's options, the lab's, or a test's (which may substitute transports and facts). */
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
  /** When the run began (epoch ms): the CLI passes its process start (performance.timeOrigin), so run-end's duration includes start-up. */
  startedAt?: number;
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
  gatherFacts?(host: Host, transport: Transport, areas?: readonly FactArea[]): Promise<HostFacts>;
  env?: NodeJS.ProcessEnv;
  /** plan --export-shell: records what each step would run (engine/shell-export.ts). */
  shellExport?: ShellExportRecorder;
  /**
   * Return once the host locks are released and the journal has ended, while the run's connections and
   * command helpers are still closing (their processes exit on their own time: ~40 ms of a drill's end on
   * two cores); the cluster's lock is released when they are closed, and `closed` settles then: the caller
   * awaits it before its process ends. Else the run returns once they are closed (and `closed` is settled).
   * Events emitted while they close (none today) reach no journal.
   */
  returnWhileClosing?: boolean;
}
