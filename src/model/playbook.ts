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
  'loop',
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
