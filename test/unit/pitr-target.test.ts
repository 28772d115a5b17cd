import { describe, expect, it } from 'vitest';
import { resolveParams } from '../../src/load/params.js';
import { archivedSegments, checkWal, chooseBackupSet, TargetRefusal, timelineLimit } from '../../src/postgres/backup-set.js';
import type { BackupEntry } from '../../src/postgres/pgbackrest-info.js';
import { DEFAULT_WAL_SEGMENT_SIZE, parseLsn, parseTargetTime, targetValueProblem } from '../../src/postgres/recovery-target.js';

function backup(label: string, stop: number, lsnStop: string, walStart: string, walStop: string): BackupEntry {
  return {
    label, type: 'full', prior: null, reference: [], start: stop - 10, stop, start_time: '', stop_time: '', size: 0, delta: 0, repo_size: 0, repo_delta: 0,
    lsn_start: null, lsn_stop: lsnStop, wal_start: walStart, wal_stop: walStop, error: false, database_id: 1, repo: 1,
  };
}

// Two fulls: one ending at 1000 s (0/3000100), one at 2000 s (0/8000100).
const B1 = backup('F1', 1000, '0/3000100', '000000010000000000000002', '000000010000000000000003');
const B2 = backup('F2', 2000, '0/8000100', '000000010000000000000007', '000000010000000000000008');
const SETS = [B1, B2];

describe('recovery target values', () => {
  it('a time needs its zone offset', () => {
    expect(targetValueProblem('time', '2024-05-01 12:00:00')?.what).toContain('has no zone offset');
    expect(targetValueProblem('time', '2024-05-01 12:00:00')?.expected).toContain("'2024-05-01 12:00:00+00'");
    expect(targetValueProblem('time', '2024-05-01 12:00:00+02:00')).toBeUndefined();
    expect(targetValueProblem('time', '2024-05-01T12:00:00.123456Z')).toBeUndefined();
    expect(targetValueProblem('time', '2024-02-30 12:00:00+00')?.what).toBe('is not a time');
    expect(parseTargetTime('2024-05-01 12:00:00+02')).toBe(Date.UTC(2024, 4, 1, 10, 0, 0));
    expect(parseTargetTime('2024-05-01 12:00:00-03:30')).toBe(Date.UTC(2024, 4, 1, 15, 30, 0));
  });

  it('xid, lsn, name, latest and immediate', () => {
    expect(targetValueProblem('xid', '12x')?.what).toBe('is not a transaction id');
    expect(targetValueProblem('xid', '4711')).toBeUndefined();
    expect(targetValueProblem('lsn', '0/ZZ')?.what).toBe('is not an LSN');
    expect(parseLsn('1/10')).toBe((1n << 32n) + 16n);
    expect(targetValueProblem('name', ' ')?.what).toContain('is empty');
    expect(targetValueProblem('latest', 'x')?.what).toContain('takes no value');
    expect(targetValueProblem('immediate', '')).toBeUndefined();
  });

  it('recovery_target_of checks a param against the type another param holds, naming where it is declared', () => {
    const defs = {
      target: { type: 'string' as const, default: 'latest' },
      target_value: { type: 'string' as const, default: '', recovery_target_of: 'target' },
    };
    const at = (name: string) => ({ file: 'pitr-drill.yml', line: name === 'target_value' ? 9 : 5, col: 3 });
    expect(() => resolveParams(defs, { target: 'time', target_value: '2024-05-01 12:00:00' }, at)).toThrow(/param "target_value" \(for target=time\): value "2024-05-01 12:00:00" has no zone offset/);
    try {
      resolveParams(defs, { target: 'time', target_value: '2024-05-01 12:00:00' }, at);
    } catch (e) {
      expect((e as { errors: { position?: unknown; exitCode: number }[] }).errors[0]).toMatchObject({ position: { file: 'pitr-drill.yml', line: 9, col: 3 }, exitCode: 2 });
    }
    expect(resolveParams(defs, { target: 'time', target_value: '2024-05-01 12:00:00+00' })).toEqual({ target: 'time', target_value: '2024-05-01 12:00:00+00' });
    expect(resolveParams(defs, {})).toEqual({ target: 'latest', target_value: '' });
  });
});

describe('choosing the backup set', () => {
  it('latest and immediate take the newest set', () => {
    expect(chooseBackupSet(SETS, { type: 'latest', value: '' }).backup.label).toBe('F2');
    expect(chooseBackupSet(SETS, { type: 'immediate', value: '' }).reason).toContain('stops at its consistency point');
  });

  it('a time or LSN target takes the newest set that ended before it', () => {
    const t = chooseBackupSet(SETS, { type: 'time', value: 'x', position: { time: 1500_000, source: 'the target time x' } });
    expect(t.backup.label).toBe('F1');
    expect(t.reason).toContain('newer sets (F2) end after the target');
    expect(chooseBackupSet(SETS, { type: 'time', value: 'x', position: { time: 2000_000, source: 's' } }).backup.label).toBe('F2');
    expect(chooseBackupSet(SETS, { type: 'lsn', value: '0/8000000', position: { lsn: parseLsn('0/8000000')!, source: 's' } }).backup.label).toBe('F1');
    expect(chooseBackupSet(SETS, { type: 'name', value: 'rp', position: { lsn: parseLsn('0/9000000')!, source: 'restore point' } }).backup.label).toBe('F2');
  });

  it('refuses a target earlier than every consistency point, or than the named set\'s', () => {
    expect(() => chooseBackupSet(SETS, { type: 'time', value: 'x', position: { time: 999_000, source: 's' } })).toThrow(TargetRefusal);
    expect(() => chooseBackupSet(SETS, { type: 'time', value: 'x', position: { time: 999_000, source: 's' } })).toThrow(/earlier than the consistency point of every backup \(the oldest, F1/);
    expect(() => chooseBackupSet(SETS, { type: 'xid', value: '9', set: 'F2', position: { time: 1500_000, source: 'commit' } })).toThrow(/earlier than the consistency point of the backup set F2/);
    expect(() => chooseBackupSet(SETS, { type: 'xid', value: '9', set: 'F9' })).toThrow('backup set F9 does not exist');
    expect(() => chooseBackupSet([], { type: 'latest', value: '' })).toThrow(/the stanza has none/);
  });

  it('a name or xid target that cannot be placed: the set param, else the newest with a warning', () => {
    expect(chooseBackupSet(SETS, { type: 'xid', value: '9', set: 'F1' })).toMatchObject({ backup: { label: 'F1' }, reason: 'set F1 was named with -p set' });
    const c = chooseBackupSet(SETS, { type: 'xid', value: '9' });
    expect(c.backup.label).toBe('F2');
    expect(c.warning).toContain('-p set=LABEL (one of F1, F2)');
  });
});

describe('WAL continuity', () => {
  const seg = (n: number, time = 0, tl = 1) => ({ name: `${tl.toString(16).toUpperCase().padStart(8, '0')}00000000${n.toString(16).toUpperCase().padStart(8, '0')}`, time });
  const wal = (segments: { name: string; time: number }[], type: string, position?: { time?: number; lsn?: bigint; source: string }) =>
    checkWal(segments, { backup: B1, type, maxTimeline: Infinity, segmentSize: DEFAULT_WAL_SEGMENT_SIZE, ...(position ? { position } : {}) });

  it('names the first missing segment between the backup start and the target', () => {
    const all = [2, 3, 4, 5, 6, 7].map((n) => seg(n, 1000 + n));
    expect(wal(all, 'latest')).toMatchObject({ from: '000000010000000000000002', to: '000000010000000000000007', missing: [], checked: 6 });
    const gap = all.filter((s) => s.name !== '000000010000000000000005');
    expect(wal(gap, 'latest').missing).toEqual(['000000010000000000000005']);
    // A target in segment 4 needs nothing after it.
    expect(wal(gap, 'lsn', { lsn: parseLsn('0/4000010')!, source: 's' }).missing).toEqual([]);
    // A time target needs WAL up to the first segment archived after it.
    expect(wal(gap, 'time', { time: 1004_500, source: 's' })).toMatchObject({ to: '000000010000000000000006', missing: ['000000010000000000000005'] });
    expect(wal(gap, 'time', { time: 1003_500, source: 's' })).toMatchObject({ to: '000000010000000000000004', missing: [] });
    // WAL after the newest archived segment is the primary's, not archived yet: not a gap.
    expect(wal([2, 3, 4].map((n) => seg(n)), 'lsn', { lsn: parseLsn('0/6000010')!, source: 's' })).toMatchObject({
      missing: [],
      pending: ['000000010000000000000005', '000000010000000000000006'],
    });
    // immediate needs only the backup's own WAL.
    expect(wal([seg(2), seg(3)], 'immediate').missing).toEqual([]);
    expect(wal([seg(2)], 'immediate').missing).toEqual(['000000010000000000000003']);
  });

  it('follows later timelines and crosses log boundaries', () => {
    expect(wal([seg(2), seg(3), seg(4, 0, 2), seg(5, 0, 2)], 'latest')).toMatchObject({ to: '000000020000000000000005', missing: [] });
    const b = backup('F', 1, '0/1', '0000000100000000000000FE', '0000000100000000000000FF');
    const r = checkWal([{ name: '0000000100000000000000FE', time: 0 }, { name: '0000000100000000000000FF', time: 0 }, { name: '000000010000000100000001', time: 0 }], {
      backup: b, type: 'latest', maxTimeline: Infinity, segmentSize: DEFAULT_WAL_SEGMENT_SIZE,
    });
    expect(r.missing).toEqual(['000000010000000100000000']);
  });

  it("recovery along the backup's own timeline (11's default 'current', or target_timeline=current) counts that timeline's WAL", () => {
    const onTimeline1 = [2, 3, 4].map((n) => seg(n));
    const current = (t: string, major: number) =>
      checkWal([...onTimeline1, seg(5, 0, 2)], { backup: B1, type: 'lsn', position: { lsn: parseLsn('0/4000010')!, source: 's' }, maxTimeline: timelineLimit(t, major), segmentSize: DEFAULT_WAL_SEGMENT_SIZE });
    for (const [t, major] of [['', 11], ['current', 15], ['1', 15]] as const) {
      expect(current(t, major)).toMatchObject({ from: '000000010000000000000002', to: '000000010000000000000004', missing: [], newest: '000000010000000000000004' });
    }
    // latest (12's default) follows timeline 2 too.
    expect(current('', 12).newest).toBe('000000020000000000000005');
  });

  it('reads repo-ls JSON: segments only, not history or partial files', () => {
    const json = JSON.stringify({
      '.': { type: 'path' },
      '00000002.history': { type: 'file', size: 40, time: 5 },
      '0000000100000000': { type: 'path' },
      '0000000100000000/000000010000000000000003-0123456789abcdef0123456789abcdef01234567.gz': { type: 'file', size: 10, time: 7 },
      '0000000100000000/000000010000000000000004.partial-0123456789abcdef0123456789abcdef01234567.gz': { type: 'file', size: 10, time: 8 },
    });
    expect(archivedSegments(json)).toEqual([{ name: '000000010000000000000003', time: 7 }]);
  });
});
