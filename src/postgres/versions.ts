/**
 * What changes between PostgreSQL majors, in one table, so that templates, recovery rendering and
 * procedures ask a question ("does primary_conninfo reload?") instead of comparing version numbers
 * all over the code. Facts come from the release notes; see shared/reference/postgres-dr.md.
 */
import { PgplayError } from '../core/errors.js';

export const SUPPORTED_MAJORS = [11, 12, 13, 14, 15, 16, 17] as const;
export type Major = (typeof SUPPORTED_MAJORS)[number];

/** How the server must be told about a changed setting. */
export type ApplyBy = 'reload' | 'restart';

export interface VersionFacts {
  major: Major;
  /** Where recovery/standby settings live: recovery.conf in PGDATA (<=11), or the normal configuration
   * files plus a signal file (12+; the server refuses to start when a recovery.conf exists). */
  recoveryConfig: 'recovery.conf' | 'signal-files';
  /** recovery.conf's standby_mode exists only up to 11; 12+ fails to start when it is set. */
  standbyMode: boolean;
  /** The WAL-retention setting for standbys: wal_keep_segments (count of 16MB segments) before 13. */
  walKeepSetting: 'wal_keep_segments' | 'wal_keep_size';
  /** Name of the promote trigger-file setting, or null when none exists (16 removed it). */
  promoteTriggerSetting: 'trigger_file' | 'promote_trigger_file' | null;
  /** A primary_conninfo / primary_slot_name change takes a reload from 13 on, a restart before. */
  primaryConninfoChange: ApplyBy;
  /** A restore_command change takes a reload from 14 on, a restart before. */
  restoreCommandChange: ApplyBy;
  /** 15 renamed the backup functions and dropped exclusive backups. */
  backupStartFunction: 'pg_start_backup' | 'pg_backup_start';
  backupStopFunction: 'pg_stop_backup' | 'pg_backup_stop';
  /** SELECT pg_promote() exists from 12. */
  pgPromote: boolean;
  /** recovery_target_timeline's default: 'current' up to 11, 'latest' from 12. */
  defaultRecoveryTargetTimeline: 'current' | 'latest';
  /** 12+ refuses to start with more than one recovery_target* set; 11 takes the last one. */
  singleRecoveryTarget: boolean;
  /** 13+ stops with FATAL when the recovery target was never reached; 11/12 promote anyway. */
  fatalWhenTargetMissed: boolean;
  /** pg_get_wal_replay_pause_state() exists from 14 (it tells "pause requested" from "paused"). */
  replayPauseStateFunction: boolean;
  /** pg_amcheck ships from 14. */
  pgAmcheck: boolean;
  /**
   * A pgBackRest release known to support this major. For 12, 13, 14, 16 and 17 it is the first release
   * that did (2.18, 2.30, 2.34, 2.46, 2.53.1); for 11 and 15 it is a release verified to work (2.18,
   * and 2.45, the Debian bookworm release pgplay is tested with), possibly later than the first.
   */
  pgbackrestMinVersion: string;
}

const table: Record<Major, VersionFacts> = {
  11: facts(11, { pgbackrestMinVersion: '2.18' }),
  12: facts(12, { pgbackrestMinVersion: '2.18' }),
  13: facts(13, { pgbackrestMinVersion: '2.30' }),
  14: facts(14, { pgbackrestMinVersion: '2.34' }),
  15: facts(15, { pgbackrestMinVersion: '2.45' }),
  16: facts(16, { pgbackrestMinVersion: '2.46' }),
  17: facts(17, { pgbackrestMinVersion: '2.53.1' }),
};

function facts(major: Major, extra: Pick<VersionFacts, 'pgbackrestMinVersion'>): VersionFacts {
  return {
    major,
    recoveryConfig: major <= 11 ? 'recovery.conf' : 'signal-files',
    standbyMode: major <= 11,
    walKeepSetting: major >= 13 ? 'wal_keep_size' : 'wal_keep_segments',
    promoteTriggerSetting: major <= 11 ? 'trigger_file' : major <= 15 ? 'promote_trigger_file' : null,
    primaryConninfoChange: major >= 13 ? 'reload' : 'restart',
    restoreCommandChange: major >= 14 ? 'reload' : 'restart',
    backupStartFunction: major >= 15 ? 'pg_backup_start' : 'pg_start_backup',
    backupStopFunction: major >= 15 ? 'pg_backup_stop' : 'pg_stop_backup',
    pgPromote: major >= 12,
    defaultRecoveryTargetTimeline: major >= 12 ? 'latest' : 'current',
    singleRecoveryTarget: major >= 12,
    fatalWhenTargetMissed: major >= 13,
    replayPauseStateFunction: major >= 14,
    pgAmcheck: major >= 14,
    ...extra,
  };
}

export function isSupportedMajor(v: unknown): v is Major {
  return typeof v === 'number' && (SUPPORTED_MAJORS as readonly number[]).includes(v);
}

/** The facts for a major version; a PgplayError (SEMANTIC) for anything outside 11..17. */
export function versionFacts(version: number): VersionFacts {
  if (!isSupportedMajor(version)) {
    throw new PgplayError({
      code: 'SEMANTIC',
      message: `PostgreSQL ${version} is not supported`,
      expected: `a major version from ${SUPPORTED_MAJORS[0]} to ${SUPPORTED_MAJORS[SUPPORTED_MAJORS.length - 1]}`,
    });
  }
  return table[version];
}

/** Major version from server_version_num (150004 -> 15) or from a PG_VERSION file's text ("15\n"). */
export function majorFromVersionNum(versionNum: number): number {
  return Math.floor(versionNum / 10000);
}

/** Major version from server_version's text ("15.10 (Debian ...)" -> 15, "9.6.24" -> 9, "17beta1" -> 17), as majorFromVersionNum gives it. */
export function majorFromServerVersion(text: string | undefined): number | undefined {
  const m = text === undefined ? null : /^\s*(\d+)/.exec(text);
  const major = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(major) && major > 0 ? major : undefined;
}

export function majorFromPgVersionFile(text: string): number | undefined {
  const m = /^\s*(\d+)(?:\.(\d+))?\s*$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]);
}

/** The pgBackRest installed with Debian bookworm; the version pgplay is tested against. */
export const PGBACKREST_TESTED_VERSION = '2.45';

/** Compares dotted versions numerically: -1, 0 or 1. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * Whether a pgBackRest release supports a PostgreSQL major, with the reason when it does not
 * (e.g. 2.45 and PostgreSQL 16: "PostgreSQL 16 needs pgBackRest 2.46 or later; this host has 2.45").
 */
export function pgbackrestSupports(pgbackrestVersion: string, major: number): { ok: true } | { ok: false; reason: string } {
  const f = versionFacts(major);
  if (compareVersions(pgbackrestVersion, f.pgbackrestMinVersion) >= 0) return { ok: true };
  return {
    ok: false,
    reason: `PostgreSQL ${major} needs pgBackRest ${f.pgbackrestMinVersion} or later; this host has ${pgbackrestVersion}`,
  };
}

/**
 * WAL kept for standbys, as the one setting this major understands. `sizeMb` is the amount wanted;
 * before 13 it becomes a count of 16MB segments (rounded up).
 */
export function walKeepSetting(version: number, sizeMb: number): { name: string; value: string | number } {
  const f = versionFacts(version);
  if (f.walKeepSetting === 'wal_keep_size') return { name: 'wal_keep_size', value: `${sizeMb}MB` };
  return { name: 'wal_keep_segments', value: Math.ceil(sizeMb / 16) };
}

/**
 * How a changed setting reaches a running server: the recovery settings are the ones whose answer
 * depends on the major; for everything else the caller knows better (this returns undefined).
 */
export function applyByForSetting(version: number, setting: string): ApplyBy | undefined {
  const f = versionFacts(version);
  switch (setting) {
    case 'primary_conninfo':
    case 'primary_slot_name':
      return f.primaryConninfoChange;
    case 'restore_command':
      return f.restoreCommandChange;
    default:
      if (setting.startsWith('recovery_target')) return 'restart';
      return undefined;
  }
}

/** SQL expressions whose names changed across majors, for queries built by pgplay. */
export function sqlNames(version: number): {
  replayPaused: string;
  backupStart: string;
  backupStop: string;
} {
  const f = versionFacts(version);
  return {
    replayPaused: f.replayPauseStateFunction
      ? "(pg_get_wal_replay_pause_state() = 'paused')"
      : 'pg_is_wal_replay_paused()',
    backupStart: f.backupStartFunction,
    backupStop: f.backupStopFunction,
  };
}
