/**
 * Parsers over output captured from real pgBackRest 2.45 runs (test/fixtures/pgbackrest: stdout as
 * .out/.json, stderr with --log-level-console=off --log-level-stderr=info|detail as .err).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  backupHorizon,
  backupTypeChange,
  gapIsOlder,
  newBackupLabel,
  parseErrorReport,
  parseExpireLog,
  parseInfoJson,
  parseLog,
  parseVerifyText,
  restoredSet,
  stanzaExists,
  STANZA_STATUS,
  summarizeStanza,
  verifyFileProblems,
  verifyNotes,
  verifyProblems,
  verifyWalRanges,
  walGaps,
} from '../../src/postgres/pgbackrest-info.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/pgbackrest', name), 'utf8');

describe('info --output=json', () => {
  it('parses full, diff and incr backups with references, sizes, LSNs and WAL', () => {
    const [s] = parseInfoJson(fixture('info3.json'));
    expect(s!.name).toBe('demo');
    expect(s!.status).toEqual({ code: 0, message: 'ok', lock_held: false });
    expect(s!.backups.map((b) => [b.label, b.type, b.prior])).toEqual([
      ['20261121-133900F', 'full', null],
      ['20261121-133900F_20261121-134018D', 'diff', '20261121-133900F'],
      ['20261121-133900F_20261121-134020I', 'incr', '20261121-133900F_20261121-134018D'],
    ]);
    const incr = s!.backups[2]!;
    expect(incr).toMatchObject({
      reference: ['20261121-133900F', '20261121-133900F_20261121-134018D'],
      start: 1795268420,
      stop: 1795268422,
      start_time: '2026-11-21T13:40:20.000Z',
      stop_time: '2026-11-21T13:40:22.000Z',
      size: 23066301,
      delta: 8458,
      repo_size: 3058778,
      repo_delta: 430,
      lsn_start: '0/C000028',
      lsn_stop: '0/D000050',
      wal_start: '00000001000000000000000C',
      wal_stop: '00000001000000000000000D',
      error: false,
      database_id: 1,
      repo: 1,
    });
    expect(s!.archive).toEqual([{ id: '15-1', min: '000000010000000000000007', max: '00000001000000000000000D' }]);
  });

  it('keeps the 64-bit system identifier exact (JSON.parse alone would round it)', () => {
    expect(String(JSON.parse(fixture('info3.json'))[0].db[0]['system-id'])).not.toBe('7710618671729953593');
    const [s] = parseInfoJson(fixture('info3.json'));
    expect(s!.db).toEqual([{ id: 1, version: '15', system_id: '7710618671729953593', repo: 1 }]);
  });

  it('summarizes a stanza: latest, latest full, counts, archive range', () => {
    const summary = summarizeStanza(parseInfoJson(fixture('info3.json'))[0]!);
    expect(summary).toMatchObject({
      stanza: 'demo',
      exists: true,
      system_id: '7710618671729953593',
      pg_version: '15',
      archive_min: '000000010000000000000007',
      archive_max: '00000001000000000000000D',
      backup_count: 3,
      full_count: 1,
    });
    expect((summary.latest as { label: string }).label).toBe('20261121-133900F_20261121-134020I');
    expect((summary.latest_full as { label: string }).label).toBe('20261121-133900F');
  });

  it('tells a missing stanza from one without backups', () => {
    const [missing] = parseInfoJson(fixture('info-missing.json'));
    expect(missing!.status.code).toBe(STANZA_STATUS.MISSING_STANZA_PATH);
    expect(missing!.status.message).toBe('missing stanza path');
    expect(stanzaExists(missing!)).toBe(false);
    const [empty] = parseInfoJson(fixture('info-nobackup.json'));
    expect(empty!.status).toEqual({ code: STANZA_STATUS.NO_BACKUP, message: 'no valid backups', lock_held: false });
    expect(stanzaExists(empty!)).toBe(true);
    expect(empty!.archive).toEqual([{ id: '15-1', min: null, max: null }]);
    expect(summarizeStanza(empty!)).toMatchObject({ latest: null, latest_full: null, backup_count: 0, archive_min: null });
  });

  it('rejects output that is not the JSON list', () => {
    expect(() => parseInfoJson('stanza: demo\n    status: ok')).toThrow(/no valid JSON/);
    expect(() => parseInfoJson('{"name":"demo"}')).toThrow(/not a list of stanzas/);
  });

  it('does not quote long digit runs inside strings', () => {
    const [s] = parseInfoJson('[{"name":"12345678901234567890","db":[{"id":1,"system-id":12345678901234567890,"version":"15"}]}]');
    expect(s!.name).toBe('12345678901234567890');
    expect(s!.db[0]!.system_id).toBe('12345678901234567890');
  });
});

describe('stderr log', () => {
  it('reads levels, joins HINT continuation lines and extracts the error code', () => {
    const log = parseLog(fixture('restore-40.err'));
    expect(log.map((l) => l.level)).toEqual(['INFO', 'INFO', 'INFO', 'ERROR', 'INFO']);
    expect(parseErrorReport(log)).toEqual({
      code: 40,
      message: "unable to restore to path '/tmp/pgbr-exp/r2' because it contains files",
      hints: ['try using --delta if this is what you intended.'],
    });
    expect(restoredSet(log)).toEqual({ label: '20261121-134336F', repo: 1, recoveryStart: '2026-11-21 13:43:36' });
  });

  it('reads errors 38, 62 and 82 with their hints', () => {
    expect(parseErrorReport(parseLog(fixture('restore-38.err')))).toEqual({
      code: 38,
      message: 'unable to restore while PostgreSQL is running',
      hints: [
        "presence of 'postmaster.pid' in '/tmp/pgbr-exp/data' indicates PostgreSQL is running.",
        "remove 'postmaster.pid' only if PostgreSQL is not running.",
      ],
    });
    expect(parseErrorReport(parseLog(fixture('backup-62.err')))).toEqual({ code: 62, message: 'stop file exists for stanza demo', hints: [] });
    const timeout = parseErrorReport(parseLog(fixture('check-82.err')))!;
    expect(timeout.code).toBe(82);
    expect(timeout.message).toBe('WAL segment 000000010000000000000012 was not archived before the 2000ms timeout');
    expect(timeout.hints).toHaveLength(3);
  });

  it('finds the new backup label and the type pgBackRest changed', () => {
    const log = parseLog(fixture('backup-diff-to-full.err'));
    expect(newBackupLabel(log)).toBe('20261121-134329F');
    expect(backupTypeChange(log)).toEqual({ from: 'diff', to: 'full', reason: 'no prior backup exists' });
    expect(parseErrorReport(log)).toBeUndefined();
    expect(backupTypeChange(parseLog(fixture('backup-62.err')))).toBeUndefined();
  });

  it('reads what expire removed, and what --dry-run would remove', () => {
    const expected = {
      removedBackups: ['20261121-134329F'],
      removedArchive: [{ archiveId: '15-1', start: '00000001000000000000000F', stop: '00000001000000000000000F' }],
    };
    const dry = parseLog(fixture('expire-dry.err'));
    expect(dry.every((l) => l.dryRun)).toBe(true);
    expect(parseExpireLog(dry)).toEqual(expected);
    const real = parseLog(fixture('expire.err'));
    expect(real.some((l) => l.dryRun)).toBe(false);
    expect(parseExpireLog(real)).toEqual(expected);
  });

  it('accepts console-format lines with timestamp and process id', () => {
    const log = parseLog('2026-11-21 13:38:38.720 P00   INFO: new backup label = 20261121-133833F\nnot a log line');
    expect(log).toEqual([{ level: 'INFO', text: 'new backup label = 20261121-133833F', dryRun: false }]);
  });
});

describe('verify', () => {
  it('passes a healthy repository', () => {
    const stanzas = parseVerifyText(fixture('verify-ok.out'));
    expect(stanzas).toHaveLength(1);
    expect(stanzas[0]!.status).toBe('ok');
    expect(stanzas[0]!.archives).toEqual([{ archive_id: '15-1', total: 7, valid: 7, missing: 0, checksum_invalid: 0, size_invalid: 0, other: 0 }]);
    expect(stanzas[0]!.backups.map((b) => [b.label, b.status, b.total, b.valid])).toEqual([
      ['20261121-133900F', 'valid', 964, 964],
      ['20261121-133900F_20261121-134018D', 'valid', 964, 964],
      ['20261121-133900F_20261121-134020I', 'valid', 964, 964],
    ]);
    expect(verifyProblems(stanzas)).toEqual([]);
  });

  it('fails a damaged backup and a WAL gap although pgBackRest exited 0', () => {
    const stanzas = parseVerifyText(fixture('verify-gap.out'));
    const log = parseLog(fixture('verify-gap.err'));
    expect(stanzas[0]!.status).toBe('error');
    expect(stanzas[0]!.backups[2]).toMatchObject({ status: 'invalid', missing: 1, total: 964, valid: 963 });
    expect(verifyWalRanges(log)).toEqual([
      { archive_id: '15-1', start: '000000010000000000000007', stop: '00000001000000000000000B' },
      { archive_id: '15-1', start: '00000001000000000000000D', stop: '00000001000000000000000D' },
    ]);
    expect(verifyProblems(stanzas, log)).toEqual([
      'stanza demo: backup 20261121-133900F_20261121-134020I is invalid (1 missing of 964 files)',
      'WAL archive 15-1: segments missing between 00000001000000000000000B and 00000001000000000000000D (timeline 00000001)',
    ]);
    expect(verifyFileProblems(log)).toEqual(["file missing '20261121-133900F_20261121-134020I/pg_data/global/pg_control.gz'"]);
  });

  it('fails a stanza without usable info files', () => {
    const stanzas = parseVerifyText(fixture('verify-nope.out'));
    expect(verifyProblems(stanzas)).toEqual(['stanza nope: No usable backup.info file', 'stanza nope: No usable archive.info file']);
  });

  it('passes an empty stanza and keeps its note', () => {
    const stanzas = parseVerifyText(fixture('verify-empty.out'));
    expect(stanzas[0]).toMatchObject({ name: 'other', status: 'ok', messages: ['no archives or backups exist in the repo'] });
    expect(verifyProblems(stanzas)).toEqual([]);
  });

  // Captured from a real repository: full backups F1 (WAL from ...02) and F2 (from ...0A), segment ...05
  // deleted from the archive, then F1 expired with `expire --set`: its WAL (02..09) stays behind.
  it('notes a WAL gap older than the oldest backup instead of failing (the oldest backup was expired)', () => {
    const stanzas = parseVerifyText(fixture('verify-old-gap.out'));
    const log = parseLog(fixture('verify-old-gap.err'));
    expect(stanzas[0]).toMatchObject({ name: 'lab', status: 'ok' });
    const horizon = backupHorizon(parseInfoJson(fixture('info-gap-after-expire.json'))[0]!);
    expect(horizon).toEqual({ label: '20261203-095646F', archive_id: '15-1', wal_start: '00000001000000000000000A' });
    expect(verifyProblems(stanzas, log, horizon)).toEqual([]);
    expect(verifyNotes(log, horizon)).toEqual([
      'WAL archive 15-1: segments missing between 000000010000000000000004 and 000000010000000000000006 (timeline 00000001), ' +
        'older than the oldest backup 20261203-095646F (WAL from 00000001000000000000000A): no restore needs them',
    ]);
  });

  it('still fails the same gap while a backup that needs it is kept', () => {
    const stanzas = parseVerifyText(fixture('verify-old-gap.out'));
    const log = parseLog(fixture('verify-old-gap.err'));
    const horizon = backupHorizon(parseInfoJson(fixture('info-gap-before-expire.json'))[0]!);
    expect(horizon).toMatchObject({ label: '20261203-095636F', wal_start: '000000010000000000000002' });
    expect(verifyProblems(stanzas, log, horizon)).toEqual([
      'WAL archive 15-1: segments missing between 000000010000000000000004 and 000000010000000000000006 (timeline 00000001)',
    ]);
    expect(verifyNotes(log, horizon)).toEqual([]);
    // Without a backup nothing says which WAL is needed: every gap fails.
    expect(verifyProblems(stanzas, log, undefined)).toHaveLength(1);
  });

  it('compares a gap with the oldest backup by WAL position across timelines and database ids', () => {
    const horizon = { label: 'F', archive_id: '15-2', wal_start: '00000003000000000000002A' };
    const gap = (archive_id: string, before: string) => ({ archive_id, timeline: before.slice(0, 8), after: '', before });
    expect(gapIsOlder(gap('15-2', '00000001000000000000002A'), horizon)).toBe(true);
    expect(gapIsOlder(gap('15-2', '00000003000000000000002B'), horizon)).toBe(false);
    expect(gapIsOlder(gap('14-1', '0000000100000000000000FF'), horizon)).toBe(true);
    expect(gapIsOlder(gap('16-3', '000000010000000000000001'), horizon)).toBe(false);
  });

  it('treats ranges on different timelines as continuous history, not a gap', () => {
    expect(
      walGaps([
        { archive_id: '15-1', start: '000000010000000000000001', stop: '000000010000000000000005' },
        { archive_id: '15-1', start: '000000020000000000000005', stop: '000000020000000000000009' },
      ]),
    ).toEqual([]);
  });

  it('counts checksum and size problems and WARN/ERROR log lines', () => {
    const stanzas = parseVerifyText(
      'stanza: s\nstatus: error\n  archiveId: 15-1, total WAL checked: 3, total valid WAL: 2\n    missing: 0, checksum invalid: 1, size invalid: 0, other: 0\n',
    );
    const problems = verifyProblems(stanzas, parseLog('WARN: archiveId: 15-1 does not match database'));
    expect(problems).toEqual(['stanza s: WAL archive 15-1: 1 checksum invalid', 'WARN: archiveId: 15-1 does not match database']);
  });
});
