/**
 * Which PostgreSQL majors a Barman release serves (issue 13 item 6). Barman 3.4 (Debian bookworm,
 * January 2023) was released with PostgreSQL 15 as the newest major: it knows the 15 backup API
 * (pg_backup_start/stop) but not 16's and 17's changes (e.g. the WAL segment a backup ends on changed
 * in 17), and EnterpriseDB lists 16 support from 3.8 and 17 from 3.11.
 */
import { compareVersions } from '../postgres/versions.js';

const MIN_BARMAN_FOR_MAJOR: Record<number, string> = { 11: '2.0', 12: '2.10', 13: '2.11', 14: '2.14', 15: '3.0', 16: '3.8', 17: '3.11' };

/** The release from `barman --version` ("3.4.0 Barman by EnterpriseDB ..."). */
export function parseBarmanVersion(stdout: string): string | undefined {
  return /^\s*(\d+\.\d+(?:\.\d+)?)/.exec(stdout)?.[1];
}

export function barmanSupports(barmanVersion: string, major: number): { ok: true } | { ok: false; reason: string } {
  const min = MIN_BARMAN_FOR_MAJOR[major];
  if (min === undefined) return { ok: false, reason: `pgplay does not know which Barman serves PostgreSQL ${major}` };
  if (compareVersions(barmanVersion, min) >= 0) return { ok: true };
  return { ok: false, reason: `PostgreSQL ${major} needs Barman ${min} or later; the repository host has Barman ${barmanVersion}` };
}
