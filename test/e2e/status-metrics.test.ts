/**
 * pgplay status and --metrics against a real lab (PostgreSQL 15, pgBackRest 2.45): healthy after a
 * backup, a standby and a drill (exit 0, every check ok); then a failing archive_command, a short
 * backup.maxAge, an inactive slot and a standby with paused replay (exit 2, each named). The metrics
 * textfiles pass `promtool check metrics` and are parsed back. Ports 28310-28312.
 */
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, eventually, labUp, PLAYBOOKS, type TestLab } from './lab-helpers.js';

interface StatusJson {
  type: 'status';
  severity: string;
  exitCode: number;
  checks: Array<{ id: string; severity: string; findings: Array<{ severity: string; host?: string; message: string; values?: Record<string, unknown> }> }>;
}

/** Samples of a Prometheus textfile: "name{labels}" → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function promtool(file: string): Promise<{ exitCode: number; output: string }> {
  const r = await execa('promtool', ['check', 'metrics'], { input: await readFile(file, 'utf8'), reject: false });
  return { exitCode: r.exitCode ?? -1, output: `${r.stdout}${r.stderr}` };
}

describe('pgplay status and --metrics on the lab', () => {
  let lab: TestLab;
  let root: string;
  let inventory: string;

  const status = async (args: string[] = []) => {
    const r = await lab.pgplay(['status', '-i', inventory, '--output', 'json', ...args]);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as StatusJson;
    return { ...r, report };
  };
  const check = (report: StatusJson, id: string) => report.checks.find((c) => c.id === id)!;

  beforeAll(async () => {
    lab = await createLab(28310, 'status');
    root = join(lab.dir, '..');
    await labUp(lab);
    inventory = join(lab.dir, 'inventory.yml');
    const backup = await lab.run('nightly-backup.yml', ['--metrics', join(root, 'backup.prom')]);
    if (backup.exitCode !== 0) throw new Error(`nightly-backup failed: ${backup.stdout.slice(-2000)}`);
    const standby = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    if (standby.exitCode !== 0) throw new Error(`standby-from-backup failed: ${standby.stdout.slice(-2000)}`);
    const drill = await lab.run('pitr-drill.yml', ['--yes', '--metrics', join(root, 'drill.prom')]);
    if (drill.exitCode !== 0) throw new Error(`pitr-drill failed: ${drill.stdout.slice(-2000)}`);
  });

  afterAll(async () => {
    await lab?.down();
  });

  it('run --metrics: the backup and the drill runs leave textfiles promtool accepts, with the values of the run', async () => {
    for (const f of ['backup.prom', 'drill.prom']) {
      const p = await promtool(join(root, f));
      expect(p.output).toBe('');
      expect(p.exitCode).toBe(0);
    }
    const backup = samples(await readFile(join(root, 'backup.prom'), 'utf8'));
    const info = await lab.pgbackrestInfo();
    const full = info.backup.find((b) => b.type === 'full')!;
    expect(backup.get('pgplay_run_success{cluster="lab",playbook="nightly-backup"}')).toBe(1);
    expect(backup.get('pgplay_run_exit_code{cluster="lab",playbook="nightly-backup"}')).toBe(0);
    expect(backup.get('pgplay_run_duration_seconds{cluster="lab",playbook="nightly-backup"}')).toBeGreaterThan(0);
    expect(backup.get('pgplay_run_backup_timestamp_seconds{cluster="lab",playbook="nightly-backup",host="bk1",type="full"}')).toBe(full.timestamp.stop);
    const drill = samples(await readFile(join(root, 'drill.prom'), 'utf8'));
    expect(drill.get('pgplay_run_drill_passed{cluster="lab",playbook="pitr-drill",host="drill1"}')).toBe(1);
    expect(drill.get('pgplay_run_drill_rto_seconds{cluster="lab",playbook="pitr-drill",host="drill1"}')).toBeGreaterThan(0);
  });

  it('healthy: exit 0, every check ok, and the status metrics parse back to what the servers say', async () => {
    const metrics = join(root, 'status.prom');
    const r = await status(['--metrics', metrics]);
    const bad = r.report.checks.flatMap((c) => c.findings.filter((f) => f.severity !== 'ok').map((f) => `${c.id} ${f.host ?? ''}: ${f.message}`));
    expect(bad).toEqual([]);
    expect(r.exitCode).toBe(0);
    expect(r.report.checks.map((c) => c.id)).toEqual(['hosts', 'backup-age', 'archiving', 'pitr-window', 'verify', 'repository-space', 'replication', 'slots', 'drill', 'clock']);
    expect(check(r.report, 'replication').findings.map((f) => f.host)).toEqual(['db2']);
    expect(check(r.report, 'slots').findings.map((f) => f.values?.slot)).toEqual(['pgplay_db2']);

    const p = await promtool(metrics);
    expect(p.output).toBe('');
    expect(p.exitCode).toBe(0);
    const m = samples(await readFile(metrics, 'utf8'));
    const info = await lab.pgbackrestInfo();
    const full = info.backup.find((b) => b.type === 'full')!;
    expect(m.get('pgplay_status_severity{cluster="lab"}')).toBe(0);
    expect(m.get('pgplay_backup_last_success_timestamp_seconds{cluster="lab",type="full"}')).toBe(full.timestamp.stop);
    expect(m.get('pgplay_host_up{cluster="lab",host="db2"}')).toBe(1);
    expect(m.get('pgplay_archive_failing{cluster="lab",host="db1"}')).toBe(0);
    expect(m.get('pgplay_slot_active{cluster="lab",host="db1",slot="pgplay_db2"}')).toBe(1);
    expect(m.get('pgplay_drill_passed{cluster="lab",host="drill1"}')).toBe(1);
    expect(m.has('pgplay_replication_lag_bytes{cluster="lab",host="db2"}')).toBe(true);

    const human = await lab.pgplay(['status', '-i', inventory]);
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toMatch(/^OK: cluster lab/);
    expect(human.stdout).toContain('no problems');
  });

  it('a path --metrics cannot write is bad input before anything runs: exit 2, no run journaled', async () => {
    await writeFile(join(root, 'a-file'), '');
    const before = (await lab.pgplay(['history', '--output', 'json'])).stdout;
    const run = await lab.run('nightly-backup.yml', ['--metrics', join(root, 'a-file', 'x.prom')]);
    expect(run.exitCode).toBe(2);
    expect(run.stdout).toContain('cannot write --metrics');
    expect((await lab.pgplay(['history', '--output', 'json'])).stdout).toBe(before);
    const st = await lab.pgplay(['status', '-i', inventory, '--metrics', join(root, 'a-file', 'x.prom')]);
    expect(st.exitCode).toBe(2);
    expect(st.stderr).toContain('cannot write --metrics');
  });

  it('broken: failing archive_command, old backup, inactive slot, paused replay: exit 2 naming each', async () => {
    // The archiver fails: postgresql.auto.conf is read last, so it overrides pgplay's archive_command.
    await lab.psql('db1', "ALTER SYSTEM SET archive_command = 'false'");
    await lab.psql('db1', 'SELECT pg_reload_conf()');
    await lab.psql('db1', 'CREATE TABLE status_probe AS SELECT g FROM generate_series(1, 1000) g');
    await lab.psql('db1', 'SELECT pg_switch_wal()');
    const failed = await eventually(() => lab.psql('db1', 'SELECT failed_count FROM pg_stat_archiver'), (n) => Number(n) > 0, 30_000);
    expect(Number(failed)).toBeGreaterThan(0);
    // A slot nobody consumes, holding WAL from now on.
    await lab.psql('db1', "SELECT pg_create_physical_replication_slot('orphan', true)");
    // The standby stops replaying.
    await lab.psql('db2', 'SELECT pg_wal_replay_pause()');
    expect(await eventually(() => lab.psql('db2', 'SELECT pg_is_wal_replay_paused()'), (v) => v === 't')).toBe('t');
    // The backup is older than a short maxAge (it was taken before the standby and the drill ran).
    const inv = parse(await readFile(inventory, 'utf8')) as { backup: Record<string, unknown> };
    inv.backup.maxAge = { any: '1s' };
    const shortAge = join(root, 'short-max-age.yml');
    await writeFile(shortAge, stringify(inv));

    const metrics = join(root, 'broken.prom');
    const r = await lab.pgplay(['status', '-i', shortAge, '--output', 'json', '--metrics', metrics]);
    expect(r.exitCode).toBe(2);
    const report = JSON.parse(r.stdout.trim()) as StatusJson;
    expect(report.severity).toBe('critical');
    const critical = (id: string) => check(report, id).findings.filter((f) => f.severity === 'critical').map((f) => `${f.host ?? ''} ${f.message}`);
    expect(critical('archiving').join()).toMatch(/db1 archive_command failing/);
    expect(critical('backup-age').join()).toMatch(/newest backup .* old, more than 1s/);
    expect(critical('slots')).toEqual([expect.stringMatching(/^db1 slot orphan \(physical\): inactive/)]);
    expect(critical('replication')).toEqual([expect.stringMatching(/^db2 replay is paused/)]);

    const p = await promtool(metrics);
    expect(p.output).toBe('');
    expect(p.exitCode).toBe(0);
    const m = samples(await readFile(metrics, 'utf8'));
    expect(m.get('pgplay_status_severity{cluster="lab"}')).toBe(2);
    expect(m.get('pgplay_archive_failing{cluster="lab",host="db1"}')).toBe(1);
    expect(m.get('pgplay_slot_active{cluster="lab",host="db1",slot="orphan"}')).toBe(0);
    expect(m.get('pgplay_replication_replay_paused{cluster="lab",host="db2"}')).toBe(1);

    const human = await lab.pgplay(['status', '-i', shortAge]);
    expect(human.exitCode).toBe(2);
    expect(human.stdout).toMatch(/^CRITICAL: cluster lab/);
    expect(human.stdout).toMatch(/archiving db1: archive_command failing/);
    expect(human.stdout).toMatch(/slots db1: slot orphan \(physical\): inactive/);
    expect(human.stdout).toMatch(/replication db2: replay is paused/);
  });

  it('a host that cannot be reached is a critical finding, not a crash', async () => {
    const inv = parse(await readFile(inventory, 'utf8')) as { hosts: Record<string, unknown> };
    // Nothing listens on this loopback port.
    inv.hosts.ghost = { address: '127.0.0.1', role: 'repository', connection: { transport: 'ssh', port: 28319, knownHosts: join(root, 'known_hosts') } };
    const file = join(root, 'ghost.yml');
    await writeFile(file, stringify(inv));
    const r = await lab.pgplay(['status', '-i', file, '--output', 'json']);
    expect(r.exitCode).toBe(2);
    const report = JSON.parse(r.stdout.trim()) as StatusJson;
    expect(check(report, 'hosts').findings.find((f) => f.host === 'ghost')).toMatchObject({ severity: 'critical', message: expect.stringMatching(/^unreachable: /) });
  });
});

void PLAYBOOKS;
