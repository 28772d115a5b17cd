/** A playbook as written (playbook.yml). Action inputs stay `unknown` until their action validates them. */
import type { ReportDeclaration } from './report.js';

export interface ParamDef {
  type: 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  enum?: Array<string | number | boolean>;
  default?: string | number | boolean;
  required?: boolean;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  /** The value is a secret: redacted everywhere it could leave the process. */
  secret?: boolean;
  /**
   * The value is a recovery target's value, of the type the named param holds (latest, time, name,
   * xid, lsn, immediate): checked for that type before anything runs (a time needs its zone offset).
   */
  recovery_target_of?: string;
}

/** Keys every step may carry besides its one action key. */
export const STEP_KEYS = [
  'id',
  'name',
  'hosts',
  'when',
  'register',
  'timeout',
  'retries',
  'delay',
  'until',
  'ignore_errors',
  'tags',
  'notify',
  'become',
  'check_mode',
  'confirm',
  'confirm_key',
  'guard',
  'loop',
  'cleanup',
  'rescue',
  'unreachable',
] as const;

export interface StepCommon {
  id: string;
  name?: string;
  /** Host name, role, `all`, or a list of them. */
  hosts: string | string[];
  /** Expression; the step is skipped on a host where it is false. */
  when?: string | boolean;
  register?: string;
  timeout?: string | number;
  retries?: number;
  delay?: string | number;
  /** Expression evaluated after each attempt; retried until true (up to retries). */
  until?: string;
  ignore_errors?: boolean;
  tags?: string[];
  notify?: string[];
  become?: string;
  /** Force check mode on (never change) or off (always apply, even under --check). */
  check_mode?: boolean;
  /** Human gate: a message shown before a destructive step; --yes answers it. */
  confirm?: string | boolean;
  /**
   * The name under which this step's confirmation is shared on its host (engine/run-context.ts confirm):
   * a yes given to an earlier step with the same key answers it. Replaces the action's own key.
   */
  confirm_key?: string;
  /** Runs even after an earlier step failed or the run was interrupted (teardown); its `when` still decides. */
  cleanup?: boolean;
  /**
   * A pre-check or fence: it runs whatever --from, --tags, --limit and --resume say (a resumed run
   * re-runs it instead of skipping it as done), because the steps after it are only safe once it held.
   */
  guard?: boolean;
  /** Run once per item on each host: a list, or a template rendering to one; the item is {{item}}, its index {{item_index}}. */
  loop?: unknown[] | string;
  /**
   * On an include step only: the playbook (with params) run when a step of the included section fails,
   * is refused or interrupted, to put back what the section changed (engine/rescue.ts).
   */
  rescue?: IncludeInput;
  /**
   * tolerate: a host the transport cannot connect to (refused, timed out) is recorded as unreachable
   * (the step is skipped there and registers `unreachable: true`) instead of failing the step; fail (default).
   */
  unreachable?: 'fail' | 'tolerate';
}

/**
 * `include:` runs another playbook's steps in place. It is a step's construct the engine runs itself
 * (engine/include.ts), not an action: a step holds it instead of an action; a handler cannot.
 */
export const INCLUDE_KEY = 'include';

export interface IncludeInput {
  /** Path of the playbook, relative to the including one. */
  playbook: string;
  params?: Record<string, unknown>;
}

export interface Step extends StepCommon {
  /** Exactly one action key with its input. */
  [action: string]: unknown;
}

export interface Playbook {
  name: string;
  description?: string;
  inventory?: string;
  params?: Record<string, ParamDef>;
  vars?: Record<string, unknown>;
  /** The report a real run produces (see model/report.ts); none when absent. */
  report?: ReportDeclaration;
  steps: Step[];
  handlers?: Record<string, Omit<Step, 'id'> & { id?: string }>;
}
