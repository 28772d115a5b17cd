import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { statusCommand } from '../../src/cli/commands/status.js';
import { MetricSet } from '../../src/metrics/textfile.js';
import { statusMetrics } from '../../src/metrics/status-metrics.js';
import { assessArchiver, segmentsWaiting } from '../../src/status/checks/archiving.js';
import { parseDfAvailable } from '../../src/status/checks/repository-space.js';
import { formatAge } from '../../src/status/format.js';
import { runStatusChecks } from '../../src/status/index.js';
import { backupAgeCheck } from '../../src/status/checks/backups.js';
import { slotsCheck } from '../../src/status/checks/slots.js';
import type { BackupEntry, StanzaInfo } from '../../src/postgres/pgbackrest-info.js';
import type { StatusCheck, StatusContext } from '../../src/status/types.js';

const NOW = new Date('2026-01-02T03:00:00Z');

describe('status rules', () => {
  it('counts the WAL segments waiting between the last archived one and the one being written', () => {
    const seg = 16 * 1024 ** 2;
    expect(segmentsWaiting('000000010000000000000005', '000000010000000000000004', seg)).toBe(0);
    expect(segmentsWaiting('000000010000000100000002', '0000000100000000000000FE', seg)).toBe(3);
    expect(segmentsWaiting('000000010000000000000005', '000000010000000000000002.00000028.backup', seg)).toBe(2);
    expect(segmentsWaiting('000000020000000000000005', '00000002.history', seg)).toBe(null);
    expect(segmentsWaiting('000000020000000000000005', '000000010000000000000004', seg)).toBe(null);
  });

  it('a failure after the last success is critical; one before it is history; archive_mode off is critical', () => {
    const base = { archive_mode: 'on', archived_count: 7, failed_count: 2, current_wal: '000000010000000000000009', segment_bytes: 16 * 1024 ** 2, last_archived_wal: '000000010000000000000008', last_failed_wal: '000000010000000000000005' };
    const failing = assessArchiver({ ...base, last_archived_time: new Date('2026-01-02T02:00:00Z'), last_failed_time: new Date('2026-01-02T02:30:00Z') }, NOW, 'db1');
    expect(failing).toMatchObject({ severity: 'critical', message: expect.stringMatching(/^archive_command failing: 2 failure\(s\), the last on 000000010000000000000005 30m ago/) });
    expect(failing.values?.failing).toBe(true);
    const recovered = assessArchiver({ ...base, last_archived_time: new Date('2026-01-02T02:40:00Z'), last_failed_time: new Date('2026-01-02T02:30:00Z') }, NOW, 'db1');
    expect(recovered).toMatchObject({ severity: 'ok', values: { failing: false, segments_waiting: 0, last_archived_age_seconds: 1200 } });
    expect(assessArchiver({ ...base, archive_mode: 'off', last_archived_time: null, last_failed_time: null }, NOW, 'db1').severity).toBe('critical');
    const behind = assessArchiver({ ...base, current_wal: '00000001000000000000000F', last_archived_time: new Date('2026-01-02T02:40:00Z'), last_failed_time: null }, NOW, 'db1');
    expect(behind).toMatchObject({ severity: 'warning', values: { segments_waiting: 6 } });
  });

  it('reads the available bytes of df -P -B1', () => {
    expect(parseDfAvailable('Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/sda1 1000 400 600 40% /\n')).toBe(600);
    expect(parseDfAvailable('df: /nope: No such file or directory\n')).toBeUndefined();
  });

  it('formats ages', () => {
    expect([formatAge(5), formatAge(125), formatAge(3 * 3600 + 60), formatAge(86400 * 2 + 3600 * 5 + 60)]).toEqual(['5s', '2m', '3h 1m', '2d 5h']);
  });

  it('a check that throws is one critical finding with its error, and the worst severity is the exit code', async () => {
    const ctx = { inventory: { cluster: 'c' }, now: NOW } as unknown as StatusContext;
    const checks: StatusCheck[] = [
      { id: 'fine', title: 'Fine', run: async () => [{ severity: 'ok', message: 'ok' }] },
      { id: 'meh', title: 'Meh', run: async () => [{ severity: 'warning', message: 'hmm' }] },
    ];
    expect((await runStatusChecks(ctx, 'inv.yml', checks)).exitCode).toBe(1);
    const broken = await runStatusChecks(ctx, 'inv.yml', [...checks, { id: 'boom', title: 'Boom', run: async () => { throw new Error('ECONNRESET'); } }]);
    expect(broken.exitCode).toBe(2);
    expect(broken.checks[2]).toMatchObject({ severity: 'critical', findings: [{ severity: 'critical', message: 'check failed: ECONNRESET' }] });
  });
});

function backup(label: string, type: BackupEntry['type'], stop: Date): BackupEntry {
  const t = stop.getTime() / 1000;
  return { label, type, prior: null, reference: [], start: t - 60, stop: t, start_time: '', stop_time: '', size: 1000, delta: 1000, repo_size: 300, repo_delta: 300, lsn_start: null, lsn_stop: null, wal_start: null, wal_stop: null, error: false, database_id: 1, repo: 1 };
}

function fakeContext(over: Omit<Partial<StatusContext>, "inventory"> & { inventory: unknown }): StatusContext {
  return { hosts: { db1: { name: 'db1', role: 'primary' } }, now: NOW, facts: () => ({ reachable: true, running: true, in_recovery: false, pgdata_present: true }), ...over } as unknown as StatusContext;
}

describe('status checks on given facts', () => {
  it('backup ages per type: a type with a maxAge and no backup is critical; one without a maxAge is only reported', async () => {
    const info = { name: 'main', status: { code: 0, message: 'ok', lock_held: false }, backups: [backup('F1', 'full', new Date('2026-01-01T03:00:00Z')), backup('I1', 'incr', new Date('2026-01-02T02:00:00Z'))] } as unknown as StanzaInfo;
    const ctx = fakeContext({ inventory: { cluster: 'main', backup: { tool: 'pgbackrest', maxAge: { full: '2d', diff: '1d', any: '2h' } } }, pgbackrestInfo: async () => info });
    const findings = await backupAgeCheck.run(ctx);
    expect(findings.map((f) => [f.severity, f.message])).toEqual([
      ['ok', 'newest full backup F1: 1d old, within 2d (300B in the repository)'],
      ['critical', 'newest diff backup: none in stanza main (ok)'],
      ['ok', 'newest incr backup I1: 1h old (300B in the repository)'],
      ['ok', 'newest backup I1: 1h old, within 2h (300B in the repository)'],
    ]);
  });

  it('with backup.tool basebackup the repository directory is read: each base-<UTC start> is a full backup', async () => {
    const du = '1048576\tbase-20251231T013000Z\n2097152\tbase-20260101T013000Z\n';
    const calls: string[][] = [];
    const ctx = fakeContext({
      inventory: { cluster: 'main', backup: { tool: 'basebackup', repoHost: 'bk1', repoPath: '/var/lib/pgplay/backups', maxAge: { full: '1d', any: '26h' } } },
      hosts: { db1: { name: 'db1', role: 'primary' }, bk1: { name: 'bk1', role: 'repository', postgres: { osUser: 'postgres' } } } as never,
      exec: async (host, argv) => {
        calls.push([host, ...argv]);
        return { argv, exitCode: 0, stdout: du, stderr: '', durationMs: 1, timedOut: false };
      },
    });
    const findings = await backupAgeCheck.run(ctx);
    expect(calls[0]?.slice(0, 2)).toEqual(['bk1', '/bin/sh']);
    expect(calls[0]?.at(-1)).toBe('/var/lib/pgplay/backups');
    expect(findings.map((f) => [f.severity, f.message])).toEqual([
      ['critical', 'newest full backup base-20260101T013000Z: 1d 1h old, more than 1d (2.0MB in the repository)'],
      ['ok', 'newest backup base-20260101T013000Z: 1d 1h old, within 1d 2h (2.0MB in the repository)'],
    ]);
  });

  it('slots: inactive, or holding more WAL than replication.maxSlotRetainedWal, is critical', async () => {
    const rows = [
      { slot_name: 'pgplay_db2', slot_type: 'physical', active: true, retained_bytes: 2 * 1024 ** 2 },
      { slot_name: 'laggard', slot_type: 'physical', active: true, retained_bytes: 3 * 1024 ** 3 },
      { slot_name: 'orphan', slot_type: 'logical', active: false, retained_bytes: 0 },
    ];
    const ctx = fakeContext({ inventory: { cluster: 'main', replication: { user: 'r', maxSlotRetainedWal: '1GB' } }, query: async () => rows });
    expect((await slotsCheck.run(ctx)).map((f) => [f.severity, f.message])).toEqual([
      ['ok', 'slot pgplay_db2 (physical): active, holds 2.0MB'],
      ['critical', 'slot laggard (physical): holds 3.0GB of WAL, more than 1.0GB'],
      ['critical', 'slot orphan (logical): inactive'],
    ]);
  });
});

describe('pgplay status input', () => {
  it('bad input is exit 2 before any host is read; with --output json an error event', async () => {
    let out = '';
    const code = await statusCommand(['-i', 'test/fixtures/no-such-inventory.yml', '--output', 'json'], (t) => void (out += t));
    expect(code).toBe(2);
    expect(JSON.parse(out)).toMatchObject({ type: 'error', exitCode: 2, errors: [{ message: expect.stringContaining('no-such-inventory.yml') }] });
    await expect(statusCommand(['--output', 'yaml'], () => undefined)).rejects.toThrow(/--output must be human or json/);
    await expect(statusCommand(['extra'], () => undefined)).rejects.toThrow(/status takes no arguments/);
  });
});

describe('metrics textfile', () => {
  it('escapes label values, drops unknown values and passes promtool check metrics', async () => {
    const m = new MetricSet();
    m.gauge('pgplay_x', 'An "example"\\with a backslash', { cluster: 'a"b\\c\nd' }, 1.5);
    m.gauge('pgplay_x', 'ignored', { cluster: 'e' }, true);
    m.gauge('pgplay_y', 'never written', { cluster: 'e' }, null);
    expect(m.format()).toBe('# HELP pgplay_x An "example"\\\\with a backslash\n# TYPE pgplay_x gauge\npgplay_x{cluster="a\\"b\\\\c\\nd"} 1.5\npgplay_x{cluster="e"} 1\n');
    const r = await execa('promtool', ['check', 'metrics'], { input: m.format(), reject: false });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it('turns a status report into gauges labelled by cluster and host', async () => {
    const text = statusMetrics({
      cluster: 'main',
      inventory: 'inv.yml',
      time: NOW.toISOString(),
      severity: 'critical',
      exitCode: 2,
      checks: [
        { id: 'replication', title: 'r', severity: 'critical', findings: [{ severity: 'critical', host: 'db2', message: 'paused', values: { lag_bytes: 4096, lag_seconds: 12.5, paused: true } }] },
        { id: 'backup-age', title: 'b', severity: 'ok', findings: [{ severity: 'ok', message: 'x', values: { type: 'full', age_seconds: 60, stop_time: 1767322740, size_bytes: 1000, repo_size_bytes: 300 } }] },
      ],
    }).format();
    expect(text).toContain('pgplay_status_severity{cluster="main"} 2\n');
    expect(text).toContain('pgplay_replication_lag_bytes{cluster="main",host="db2"} 4096\n');
    expect(text).toContain('pgplay_replication_replay_paused{cluster="main",host="db2"} 1\n');
    expect(text).toContain('pgplay_backup_last_success_timestamp_seconds{cluster="main",type="full"} 1767322740\n');
    const r = await execa('promtool', ['check', 'metrics'], { input: text, reject: false });
    expect(`${r.stdout}${r.stderr}`).toBe('');
  });
});
