/**
 * `pgplay status` with backup.tool barman (issue 13 with issue 16's status): the backups come from
 * Barman on the repository host (`barman -f json list-backups` and `show-backup`), the repository's own
 * check from `barman check --nagios`, the free space from the server's backup_directory
 * (`show-servers`), every command as the barman OS user. The same findings, values and OK/WARN/CRIT
 * rules as with pgBackRest. The answers are real Barman 3.4 output (fixtures/barman, captured on the
 * rig of barman-machines.test.ts; show-servers on this machine, its paths set to Debian's).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { statusMetrics } from '../../src/metrics/status-metrics.js';
import { backupAgeCheck } from '../../src/status/checks/backups.js';
import { pitrWindowCheck } from '../../src/status/checks/pitr-window.js';
import { repositorySpaceCheck } from '../../src/status/checks/repository-space.js';
import { verifyCheck } from '../../src/status/checks/verify.js';
import { runStatusChecks } from '../../src/status/index.js';
import type { StatusContext } from '../../src/status/types.js';
import type { ExecResult } from '../../src/transports/types.js';

const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', 'barman', name), 'utf8');

// The captured backups: 20261203T205950 (older, OBSOLETE) and 20261203T205952, which ended at 20:59:54 UTC.
const NEWEST_END = 1796331594;
const NEWEST_BEGIN = 1796331592;

/** show-backup of the older backup: the captured one with its id and times two seconds earlier. */
function showOlder(): string {
  const json = JSON.parse(fixture('show-backup.json'));
  const b = json.main;
  b.backup_id = '20261203T205950';
  b.base_backup_information.begin_time_timestamp = String(NEWEST_BEGIN - 2);
  b.base_backup_information.end_time_timestamp = String(NEWEST_END - 2);
  b.base_backup_information.disk_usage_bytes = 20000000;
  return JSON.stringify(json);
}

interface Call {
  host: string;
  argv: string[];
  become?: string;
}

function barmanContext(o: { now: Date; maxAge?: Record<string, string>; pitrWindow?: string; nagios?: { stdout: string; exitCode: number }; df?: string }) {
  const calls: Call[] = [];
  const answer = (argv: string[]): Pick<ExecResult, 'exitCode' | 'stdout' | 'stderr'> => {
    const cmd = argv.slice(argv.indexOf('barman') + 1).filter((a) => a !== '-f' && a !== 'json');
    const key = cmd.join(' ');
    if (key === 'list-backups main') return { exitCode: 0, stdout: fixture('list-backups.json'), stderr: '' };
    if (key === 'show-backup main 20261203T205952') return { exitCode: 0, stdout: fixture('show-backup.json'), stderr: '' };
    if (key === 'show-backup main 20261203T205950') return { exitCode: 0, stdout: showOlder(), stderr: '' };
    if (key === 'show-servers main') return { exitCode: 0, stdout: fixture('show-servers.json'), stderr: '' };
    if (key === 'check --nagios main') return { ...(o.nagios ?? { stdout: 'BARMAN OK - Ready to serve the Espresso backup for main\n', exitCode: 0 }), stderr: '' };
    if (argv[0] === 'df') return { exitCode: 0, stdout: o.df ?? `Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/sda1 100000000000 400 90000000000 1% /\n`, stderr: '' };
    return { exitCode: 1, stdout: '', stderr: `unexpected command ${argv.join(' ')}` };
  };
  const ctx = {
    inventory: { cluster: 'main', backup: { tool: 'barman', repoHost: 'bk1', repoPath: '/var/lib/pgplay/backups', maxAge: { full: '8d', any: '26h', ...o.maxAge }, ...(o.pitrWindow ? { pitrWindow: o.pitrWindow } : {}), barman: {} } },
    hosts: {
      db1: { name: 'db1', role: 'primary', postgres: { osUser: 'postgres' } },
      bk1: { name: 'bk1', role: 'repository', postgres: { osUser: 'postgres' } },
    },
    now: o.now,
    facts: () => ({ reachable: true, running: true, in_recovery: false, pgdata_present: true }),
    exec: async (host: string, argv: string[], options: { become?: string } = {}) => {
      calls.push({ host, argv, become: options.become });
      return { argv, durationMs: 1, timedOut: false, ...answer(argv) };
    },
    pgbackrestInfo: async () => {
      throw new Error('pgbackrest info is not read with backup.tool barman');
    },
    journalRuns: () => [],
  } as unknown as StatusContext;
  return { ctx, calls };
}

describe('pgplay status with backup.tool barman', () => {
  it('backup ages from list-backups/show-backup of the finished backups, against backup.maxAge', async () => {
    const { ctx, calls } = barmanContext({ now: new Date((NEWEST_END + 3600) * 1000), maxAge: { any: '30m' } });
    const findings = await backupAgeCheck.run(ctx);
    expect(findings.map((f) => [f.severity, f.message])).toEqual([
      ['ok', 'newest full backup 20261203T205952: 1h old, within 8d (22.1MB in the repository)'],
      ['critical', 'newest backup 20261203T205952: 1h old, more than 30m (22.1MB in the repository)'],
    ]);
    expect(findings[0]!.values).toMatchObject({ type: 'full', label: '20261203T205952', age_seconds: 3600, stop_time: NEWEST_END, size_bytes: 23138558, repo_size_bytes: 23138558 });
    // Barman runs as the barman OS user on the repository host, and only there.
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((c) => c.host === 'bk1' && c.become === 'barman' && c.argv.includes('barman'))).toBe(true);
  });

  it('no finished backup of the server: critical, naming Barman\'s server', async () => {
    const { ctx } = barmanContext({ now: new Date(NEWEST_END * 1000) });
    const empty = { ...ctx, exec: async (host: string, argv: string[], options?: { become?: string }) => (argv.includes('list-backups') ? { argv, exitCode: 0, stdout: '{"main": []}', stderr: '', durationMs: 1, timedOut: false } : ctx.exec(host, argv, options)) };
    expect((await backupAgeCheck.run(empty)).map((f) => [f.severity, f.message])).toEqual([
      ['critical', "newest full backup: none in Barman's server main on bk1"],
      ['critical', "newest backup: none in Barman's server main on bk1"],
    ]);
  });

  it('pitr window from the oldest finished backup\'s begin time (show-backup)', async () => {
    const { ctx } = barmanContext({ now: new Date((NEWEST_BEGIN - 2 + 7200) * 1000), pitrWindow: '3h' });
    const [f] = await pitrWindowCheck.run(ctx);
    expect(f).toMatchObject({ severity: 'warning', values: { oldest_full_age_seconds: 7200, window_seconds: 10800, label: '20261203T205950' } });
  });

  it('barman check --nagios is the repository\'s check: every failed check named, critical', async () => {
    const { ctx } = barmanContext({ now: new Date(NEWEST_END * 1000), nagios: { stdout: fixture('check-nagios.txt'), exitCode: 2 } });
    const [f] = await verifyCheck.run(ctx);
    expect(f).toMatchObject({ severity: 'critical', host: 'bk1', values: { passed: false } });
    expect(f!.message).toBe('barman check main failed: minimum redundancy requirements, continuous archiving');
    const { ctx: fine } = barmanContext({ now: new Date(NEWEST_END * 1000) });
    expect(await verifyCheck.run(fine)).toEqual([
      { severity: 'ok', host: 'bk1', message: 'barman check main: BARMAN OK - Ready to serve the Espresso backup for main', values: { passed: true, age_seconds: 0, run: null } },
    ]);
  });

  it('free space where Barman keeps the server\'s backups (show-servers backup_directory) against the last full backup', async () => {
    const { ctx, calls } = barmanContext({ now: new Date(NEWEST_END * 1000), df: 'Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/sda1 100000000 400 30000000 1% /\n' });
    const [f] = await repositorySpaceCheck.run(ctx);
    expect(f).toMatchObject({ severity: 'warning', host: 'bk1', values: { available_bytes: 30000000, expected_full_bytes: 23138558 } });
    expect(f!.message).toContain('/var/lib/barman/main');
    expect(calls.find((c) => c.argv[0] === 'df')).toMatchObject({ host: 'bk1', become: 'barman', argv: ['df', '-P', '-B1', '/var/lib/barman/main'] });
  });

  it('the whole status reads Barman\'s backups once, and its metrics carry them', async () => {
    const { ctx, calls } = barmanContext({ now: new Date((NEWEST_END + 60) * 1000) });
    const checks = [backupAgeCheck, pitrWindowCheck, repositorySpaceCheck, verifyCheck];
    const report = await runStatusChecks(ctx, 'inv.yml', checks);
    expect(report.checks.map((c) => [c.id, c.severity])).toEqual([
      ['backup-age', 'ok'],
      ['pitr-window', 'ok'],
      ['repository-space', 'ok'],
      ['verify', 'ok'],
    ]);
    expect(calls.filter((c) => c.argv.includes('list-backups')).length).toBe(1);
    const text = statusMetrics(report).format();
    expect(text).toContain(`pgplay_backup_last_success_timestamp_seconds{cluster="main",type="full"} ${NEWEST_END}\n`);
    expect(text).toContain('pgplay_backup_last_size_bytes{cluster="main",type="full"} 23138558\n');
    expect(text).toContain('pgplay_verify_passed{cluster="main"} 1\n');
  });
});
