import type { ErrorPayload } from '../core/errors.js';

/** Events the engine emits; renderers (listr2, plain lines, JSON lines), the journal and reports consume them. */
export type StepStatus = 'ok' | 'changed' | 'skipped' | 'failed';

export interface RecapCounts {
  ok: number;
  changed: number;
  skipped: number;
  failed: number;
  unreachable: number;
}

export type RunEvent =
  | {
      type: 'run-start';
      runId: string;
      playbook: string;
      inventory: string;
      check: boolean;
      /** The playbook is one pgplay ships (found by name), not a file where the user is. */
      shipped?: boolean;
      hosts: string[];
      steps: string[];
      time: string;
    }
  | { type: 'step-start'; step: string; name: string; hosts: string[]; handler: boolean; time: string }
  | {
      type: 'step-result';
      step: string;
      name: string;
      host: string;
      status: StepStatus;
      handler: boolean;
      msg?: string;
      diff?: string;
      attempts: number;
      durationMs: number;
      ignored?: boolean;
      /** A step with `loop`: one result per item, with the item, its 0-based index and the number of items. */
      item?: unknown;
      index?: number;
      items?: number;
      error?: ErrorPayload;
      time: string;
    }
  | { type: 'log'; step: string; host: string; line: string; time: string }
  | {
      type: 'run-end';
      runId: string;
      status: 'ok' | 'failed' | 'refused' | 'interrupted' | 'invalid';
      exitCode: number;
      recap: Record<string, RecapCounts>;
      durationMs: number;
      error?: ErrorPayload;
      /** Status interrupted: what interrupted it, as the CLI said it (`terminated by SIGTERM`, `hung up (SIGHUP)`). */
      interruptedBy?: string;
      time: string;
    };

export type RunEventListener = (event: RunEvent) => void;

/** `--output json`: what pgplay prints instead of plain text when it fails before or outside a run (exit 2 on bad input). */
export interface ErrorEvent {
  type: 'error';
  exitCode: number;
  errors: ErrorPayload[];
  time: string;
}
