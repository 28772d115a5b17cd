/**
 * What `pgplay status` reports: findings grouped by check, each with a Nagios severity. The worst
 * severity is the exit code (0 ok, 1 warning, 2 critical), so a scheduler or a monitoring system can
 * run the command as it is.
 */
import type { Host, Inventory } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { JournalRun } from '../journal/reader.js';
import type { StanzaInfo } from '../postgres/pgbackrest-info.js';
import type { ExecResult } from '../transports/types.js';

export type Severity = 'ok' | 'warning' | 'critical';

export const SEVERITY_EXIT: Record<Severity, number> = { ok: 0, warning: 1, critical: 2 };

export type MetricValue = number | string | boolean | null;

export interface Finding {
  severity: Severity;
  /** The host the finding is about, when it is about one. */
  host?: string;
  /** What a person reads in the table: what was seen and, when it is not ok, against what. */
  message: string;
  /** The measured values (ages in seconds, sizes in bytes), for --output json and --metrics. */
  values?: Record<string, MetricValue>;
}

export interface CheckResult {
  id: string;
  title: string;
  severity: Severity;
  findings: Finding[];
}

export interface StatusReport {
  cluster: string;
  inventory: string;
  time: string;
  severity: Severity;
  exitCode: number;
  checks: CheckResult[];
}

/** What every check reads through; every remote read goes through the engine's transports. */
export interface StatusContext {
  inventory: Inventory;
  hosts: Record<string, Host>;
  now: Date;
  facts(host: string): HostFacts;
  /** Rows of a read-only query on a host's server, as the superuser through its socket. */
  query(host: string, sql: string): Promise<Record<string, unknown>[]>;
  exec(host: string, argv: string[], options?: { become?: string }): Promise<ExecResult>;
  /** The stanza as `pgbackrest info` reports it on the backup host (read once). */
  pgbackrestInfo(): Promise<StanzaInfo>;
  /** This cluster's journaled runs (not plans), newest first. */
  journalRuns(): JournalRun[];
}

export interface StatusCheck {
  id: string;
  title: string;
  /** A check that throws becomes one critical finding naming the error: status never crashes on one. */
  run(ctx: StatusContext): Promise<Finding[]>;
}

export function worst(severities: Severity[]): Severity {
  return severities.reduce<Severity>((w, s) => (SEVERITY_EXIT[s] > SEVERITY_EXIT[w] ? s : w), 'ok');
}
