/**
 * What `pgplay schedule` schedules: one playbook against one inventory, with its params, at a time.
 * The command line it runs is the same for every engine (systemd, cron); the per-cluster lock of
 * `pgplay run` keeps two runs from overlapping whatever starts them (a second run exits 3).
 */
import { PgplayError } from '../core/errors.js';

export type Every = 'hourly' | 'daily' | 'weekly';
export const EVERY: readonly Every[] = ['hourly', 'daily', 'weekly'];
export const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;

export interface Schedule {
  /** Unit / job name: pgplay-<cluster>-<playbook>. */
  name: string;
  description: string;
  /** argv of the run: node, pgplay's main.js, run, the playbook, -i, -p ... (all absolute paths). */
  argv: string[];
  every: Every;
  hour: number;
  minute: number;
  /** weekly only. */
  day: (typeof DAYS)[number];
  /** systemd's RandomizedDelaySec, in seconds (0: none). */
  randomizedDelaySeconds: number;
  /** Environment of the run (PGPLAY_STATE_DIR, ...). */
  env: Record<string, string>;
  /** systemd: a file (0600, root's) with the variables the inventory's {env} secrets name. */
  environmentFile?: string;
}

/** "01:30" (daily, weekly) or "15" / ":15" (hourly) → hour and minute; anything else is bad input. */
export function parseAt(every: Every, at: string | undefined): { hour: number; minute: number } {
  const text = at ?? (every === 'hourly' ? '00' : '00:00');
  const m = every === 'hourly' ? /^:?(\d{1,2})$/.exec(text) : /^(\d{1,2}):(\d{2})$/.exec(text);
  const hour = every === 'hourly' ? 0 : Number(m?.[1]);
  const minute = Number(every === 'hourly' ? m?.[1] : m?.[2]);
  if (!m || hour > 23 || minute > 59) {
    throw new PgplayError({
      code: 'USAGE',
      message: `--at "${text}" is not a time for --every ${every}`,
      expected: every === 'hourly' ? 'the minute of the hour, e.g. --at 15' : 'HH:MM, e.g. --at 01:30',
    });
  }
  return { hour, minute };
}

/** A unit/job name made of what systemd and cron accept everywhere. */
export function scheduleName(cluster: string, playbook: string): string {
  return `pgplay-${cluster}-${playbook}`.replace(/[^A-Za-z0-9_.-]/g, '-');
}
