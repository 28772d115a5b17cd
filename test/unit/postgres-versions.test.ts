import { describe, expect, it } from 'vitest';
import {
  applyByForSetting,
  compareVersions,
  majorFromPgVersionFile,
  majorFromVersionNum,
  pgbackrestSupports,
  sqlNames,
  SUPPORTED_MAJORS,
  versionFacts,
  walKeepSetting,
} from '../../src/postgres/versions.js';
import { PgplayError } from '../../src/core/errors.js';

describe('versionFacts', () => {
  it('recovery layout and standby_mode: recovery.conf up to 11, signal files from 12', () => {
    expect(SUPPORTED_MAJORS.map((v) => [v, versionFacts(v).recoveryConfig, versionFacts(v).standbyMode])).toEqual([
      [11, 'recovery.conf', true],
      [12, 'signal-files', false],
      [13, 'signal-files', false],
      [14, 'signal-files', false],
      [15, 'signal-files', false],
      [16, 'signal-files', false],
      [17, 'signal-files', false],
    ]);
  });

  it('promote trigger setting: trigger_file, then promote_trigger_file 12..15, none from 16', () => {
    expect(SUPPORTED_MAJORS.map((v) => versionFacts(v).promoteTriggerSetting)).toEqual([
      'trigger_file',
      'promote_trigger_file',
      'promote_trigger_file',
      'promote_trigger_file',
      'promote_trigger_file',
      null,
      null,
    ]);
  });

  it('reload vs restart for primary_conninfo (13+) and restore_command (14+)', () => {
    expect(SUPPORTED_MAJORS.map((v) => applyByForSetting(v, 'primary_conninfo'))).toEqual([
      'restart',
      'restart',
      'reload',
      'reload',
      'reload',
      'reload',
      'reload',
    ]);
    expect(SUPPORTED_MAJORS.map((v) => applyByForSetting(v, 'restore_command'))).toEqual([
      'restart',
      'restart',
      'restart',
      'reload',
      'reload',
      'reload',
      'reload',
    ]);
    expect(applyByForSetting(15, 'shared_buffers')).toBeUndefined();
  });

  it('WAL retention setting by version, with segments rounded up', () => {
    expect(walKeepSetting(11, 1024)).toEqual({ name: 'wal_keep_segments', value: 64 });
    expect(walKeepSetting(12, 100)).toEqual({ name: 'wal_keep_segments', value: 7 });
    expect(walKeepSetting(13, 1024)).toEqual({ name: 'wal_keep_size', value: '1024MB' });
  });

  it('backup function names, pg_promote, pause-state function', () => {
    expect(sqlNames(14)).toEqual({ replayPaused: "(pg_get_wal_replay_pause_state() = 'paused')", backupStart: 'pg_start_backup', backupStop: 'pg_stop_backup' });
    expect(sqlNames(15).backupStart).toBe('pg_backup_start');
    expect(sqlNames(13).replayPaused).toBe('pg_is_wal_replay_paused()');
    expect(versionFacts(11).pgPromote).toBe(false);
    expect(versionFacts(12).pgPromote).toBe(true);
    expect(versionFacts(12).defaultRecoveryTargetTimeline).toBe('latest');
    expect(versionFacts(11).defaultRecoveryTargetTimeline).toBe('current');
  });

  it('refuses majors outside 11..17 as a SEMANTIC error', () => {
    for (const v of [10, 18, 9.6]) {
      const e = (() => {
        try {
          versionFacts(v);
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(PgplayError);
      expect((e as PgplayError).message).toBe(`PostgreSQL ${v} is not supported`);
      expect((e as PgplayError).expected).toBe('a major version from 11 to 17');
    }
  });
});

describe('pgBackRest support', () => {
  it('2.45 supports 11..15 and says which release 16 and 17 need', () => {
    for (const v of [11, 12, 13, 14, 15]) expect(pgbackrestSupports('2.45', v)).toEqual({ ok: true });
    expect(pgbackrestSupports('2.45', 16)).toEqual({ ok: false, reason: 'PostgreSQL 16 needs pgBackRest 2.46 or later; this host has 2.45' });
    expect(pgbackrestSupports('2.45', 17)).toEqual({ ok: false, reason: 'PostgreSQL 17 needs pgBackRest 2.53.1 or later; this host has 2.45' });
    expect(pgbackrestSupports('2.53', 17).ok).toBe(false);
    expect(pgbackrestSupports('2.53.1', 17).ok).toBe(true);
    expect(pgbackrestSupports('2.54.0', 16).ok).toBe(true);
  });

  it('compares dotted versions numerically', () => {
    expect(compareVersions('2.9', '2.10')).toBe(-1);
    expect(compareVersions('2.53.1', '2.53')).toBe(1);
    expect(compareVersions('2.46', '2.46.0')).toBe(0);
  });
});

describe('version parsing', () => {
  it('from server_version_num and PG_VERSION', () => {
    expect(majorFromVersionNum(110022)).toBe(11);
    expect(majorFromVersionNum(170010)).toBe(17);
    expect(majorFromPgVersionFile('15\n')).toBe(15);
    expect(majorFromPgVersionFile('9.6\n')).toBe(9);
    expect(majorFromPgVersionFile('garbage')).toBeUndefined();
  });
});
