import type { RunEvent } from '../engine/events.js';
import type { ReportDeclaration } from '../model/report.js';

/**
 * A run's journal is one JSON-lines file, runs/<run-id>.jsonl under the state directory: a header
 * line, then the run's events (already redacted) as they happen, and the values steps registered.
 * Lines are appended and fsynced at step boundaries, so a crash leaves every finished step on disk;
 * a torn last line is ignored when reading.
 */
export const JOURNAL_VERSION = 1;

export interface JournalHeader {
  type: 'journal';
  version: number;
  runId: string;
  playbook: string;
  /** sha256 of the playbook file as it was run, to tell a resumed run that it changed. */
  playbookSha256: string;
  inventory: string;
  cluster: string;
  /** Parameters after defaults, redacted: secret ones read ******** and must be given again on resume. */
  params: Record<string, unknown>;
  check: boolean;
  options: { limit?: string[]; tags?: string[]; from?: string; timeout?: string };
  /** The report the playbook declares (its `report:` key); absent when it declares none. */
  report?: ReportDeclaration;
  git: { commit: string; dirty: boolean } | null;
  /** The run this one resumes. */
  resumeOf: string | null;
  pid: number;
  procStart?: string;
  hostname: string;
  user: string;
  started: string;
}

/** A value a step registered on a host, kept so a resumed run can give later steps what they saw. */
export interface RegisteredRecord {
  type: 'registered';
  step: string;
  host: string;
  handler: boolean;
  name: string;
  value: unknown;
  /** A loop's item: the value one item registered (the step's own record holds them all). */
  index?: number;
}

export type JournalRecord = JournalHeader | RunEvent | RegisteredRecord;

export type RunStatus = Extract<RunEvent, { type: 'run-end' }>['status'] | 'running' | 'incomplete';
