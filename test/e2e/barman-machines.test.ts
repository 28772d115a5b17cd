/**
 * backup.tool barman on separate machines (issue 13 item 2), subnet 127.0.60.x: a repository machine bk1
 * with Debian's Barman 3.4 (no PostgreSQL), a primary db1 and a standby-to-be db2 with Debian's
 * PostgreSQL 15 (pg_createcluster), a drill machine drill1, reached over SSH with an inventory as a DBA
 * writes it (no host vars). One rig for the file; the tests run in order:
 *
 * - nightly-backup with backup_method postgres: Barman's server config, roles, pg_hba rules, the SSH
 *   trust both ways, the slot; a streaming backup listed by Barman; archive_command is barman-wal-archive.
 * - standby-from-backup db2: recovered by barman recover over SSH, streaming from db1.
 * - pgplay status reads Barman (list-backups/show-backup, check --nagios, backup_directory); the exported
 *   standby build (plan --export-shell) rebuilds db2 by hand: barman recover sent over SSH from db2.
 * - pitr-drill to a restore point on drill1: barman recover and barman-wal-restore bring a dropped table back.
 * - retention: a second nightly-backup and barman cron (REDUNDANCY 1) delete the first backup.
 * - backup_method rsync (a second Barman server for the same cluster): an rsync backup listed.
 * - barman check with archiving broken on the primary: exit 1, the failed checks by name (also --nagios).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { CONFIG_DIR, startMachines, type Machine, type Machines } from '../support/machines.js';
import { eventually, events, type JsonEvent } from './lab-helpers.js';

const SUBNET = '127.0.60';
const PLAYBOOKS = resolve('playbooks');

type RunOutcome = { exitCode: number; stdout: string; stderr: string; events: JsonEvent[] };

interface ListedBackup {
  backup_id: string;
  status: string;
  retention_status?: string;
}

describe('backup.tool barman on separate machines', () => {
  let rig: Machines;
  let work: string;
  let stateDir: string;
  const started = Date.now();
  const barmanPassword = `bm-${randomBytes(12).toString('hex')}`;
  const replicationPassword = `repl-${randomBytes(12).toString('hex')}`;
  const superuserPassword = `su-${randomBytes(12).toString('hex')}`;
  const env = { PGPLAY_BARMAN_PASSWORD: barmanPassword, PGPLAY_REPLICATION_PASSWORD: replicationPassword };
  const outputs: string[] = [];
  const m = (name: 'db1' | 'db2' | 'drill1' | 'bk1'): Machine => rig.machines[name]!;

  async function sh(x: Machine, script: string, user?: string): Promise<string> {
    const r = await x.exec(['sh', '-ec', script], { user });
    if (r.exitCode !== 0) throw new Error(`on ${x.name}: ${script}\nexited ${r.exitCode}: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** As a DBA writes it for Debian hosts: no pgdata, no host vars. */
  async function inventory(file: string, barman: Record<string, unknown>): Promise<string> {
    const inv = {
      cluster: 'main',
      postgres: { version: 15, layout: 'debian' },
      connection: { transport: 'ssh', user: 'root', port: 22, identityFile: rig.identityFile, knownHosts: rig.knownHosts, agent: false, become: 'postgres' },
      replication: { user: 'replicator', password: { env: 'PGPLAY_REPLICATION_PASSWORD' } },
      backup: { tool: 'barman', repoHost: 'bk1', barman: { password: { env: 'PGPLAY_BARMAN_PASSWORD' }, ...barman } },
      hosts: {
        db1: { address: m('db1').address, role: 'primary' },
        db2: { address: m('db2').address, role: 'standby', upstream: 'db1' },
        drill1: { address: m('drill1').address, role: 'drill', pgdata: '/var/lib/postgresql/15/drill', postgres: { port: 5499 } },
        bk1: { address: m('bk1').address, role: 'repository' },
      },
    };
    const path = join(work, file);
    await writeFile(path, stringify(inv));
    return path;
  }

  async function run(playbook: string, inv: string, args: string[] = []): Promise<RunOutcome> {
    const path = playbook.startsWith('/') ? playbook : join(PLAYBOOKS, playbook);
    const r = await runCli(['run', path, '-i', inv, '--output', 'json', '--state-dir', stateDir, ...args], { env });
    outputs.push(r.stdout, r.stderr);
    return { ...r, events: events(r.stdout) };
  }
  const failure = (r: RunOutcome) => `exit ${r.exitCode}\n${r.stdout.slice(-8000)}\n${r.stderr.slice(-3000)}`;

  async function listBackups(server: string): Promise<ListedBackup[]> {
    const out = await sh(m('bk1'), `barman -f json list-backups ${server}`, 'barman');
    return (JSON.parse(out) as Record<string, ListedBackup[]>)[server] ?? [];
  }

  interface StatusFinding {
    severity: string;
    message: string;
    values?: Record<string, unknown>;
  }
  /** `pgplay status --output json`: the findings of each check by id. */
  async function status(inv: string): Promise<Record<string, StatusFinding[]>> {
    const r = await runCli(['status', '-i', inv, '--output', 'json', '--state-dir', stateDir], { env });
    outputs.push(r.stdout, r.stderr);
    const report = JSON.parse(r.stdout) as { checks: { id: string; findings: StatusFinding[] }[] };
    return Object.fromEntries(report.checks.map((c) => [c.id, c.findings]));
  }

  let streaming: string;
  let rsync: string;

  beforeAll(async () => {
    rig = await startMachines([
      { name: 'db1', address: `${SUBNET}.1` },
      { name: 'db2', address: `${SUBNET}.2` },
      { name: 'drill1', address: `${SUBNET}.3`, postgres: false },
      { name: 'bk1', address: `${SUBNET}.4`, postgres: false },
    ]);
    work = await mkdtemp(join(tmpdir(), 'pgplay-barman-machines-'));
    stateDir = join(work, 'state');
    streaming = await inventory('inventory.yml', { method: 'postgres', retention: { redundancy: 1 }, minimumRedundancy: 1, lastBackupMaximumAgeDays: 1 });
    rsync = await inventory('inventory-rsync.yml', { method: 'rsync', server: 'main_rsync', retention: { redundancy: 2 } });
    // What the DBA had before pgplay: the superuser's password, which the repository host's globals
    // export logs in with from its own ~/.pgpass.
    await m('db1').psql(`ALTER ROLE postgres PASSWORD '${superuserPassword}'`);
    await sh(m('bk1'), `umask 077; printf '%s\\n' '*:5432:*:postgres:${superuserPassword}' > ~postgres/.pgpass; chown postgres: ~postgres/.pgpass`);
    await m('db1').psql("CREATE TABLE rows_before (id int); INSERT INTO rows_before SELECT generate_series(1, 100)");
    // The package's fresh cluster on the standby-to-be: stopped, as the README tells the DBA.
    await sh(m('db2'), 'pg_ctlcluster 15 main stop');
    const prepare = await run('prepare.yml', streaming, ['--yes']);
    expect(prepare.exitCode, failure(prepare)).toBe(0);
  }, 240_000);

  afterAll(async () => {
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    console.log(`barman-machines: the file took ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('nightly-backup (backup_method postgres): Barman configured by pgplay takes a streaming backup it lists', async () => {
    const r = await run('nightly-backup.yml', streaming, ['--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    const conf = await sh(m('bk1'), 'cat /etc/barman.d/main.conf');
    expect(conf).toContain('backup_method = postgres');
    expect(conf).toContain('streaming_archiver = on');
    expect(conf).toContain('slot_name = barman_main');
    expect(conf).toContain('retention_policy = REDUNDANCY 1');
    expect(conf).not.toContain(barmanPassword);
    expect(await sh(m('bk1'), 'stat -c "%U %a" ~barman/.pgpass')).toBe('barman 600');
    expect(await sh(m('db1'), `grep '^archive_command' ${CONFIG_DIR}/conf.d/pgplay.conf`)).toBe(`archive_command = 'barman-wal-archive ${m('bk1').address} main %p'`);
    expect(await m('db1').psql("SELECT slot_type FROM pg_replication_slots WHERE slot_name = 'barman_main'")).toBe('physical');
    expect(await m('db1').psql("SELECT rolsuper FROM pg_roles WHERE rolname = 'barman' UNION ALL SELECT rolreplication FROM pg_roles WHERE rolname = 'streaming_barman'")).toBe('t\nt');
    const backups = await listBackups('main');
    expect(backups.map((b) => b.status)).toEqual(['DONE']);
    // The primary's own archive_command reached Barman.
    expect(await m('db1').psql('SELECT archived_count > 0 AND failed_count = 0 FROM pg_stat_archiver')).toBe('t');
    const listed = r.events.find((e) => e.type === 'step-result' && e.step === 'barman/list');
    expect(JSON.stringify(listed)).toContain(backups[0]!.backup_id);
  }, 300_000);

  it('standby-from-backup db2: recovered from Barman over SSH, streaming from db1', async () => {
    const r = await run('standby-from-backup.yml', streaming, ['-p', 'host=db2', '-p', 'rebuild=true', '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(await m('db2').psql('SELECT pg_is_in_recovery()')).toBe('t');
    expect(await m('db2').psql('SELECT count(*) FROM rows_before')).toBe('100');
    expect(await eventually(() => m('db1').psql("SELECT application_name || ' ' || state FROM pg_stat_replication WHERE application_name = 'db2'"), (v) => v === 'db2 streaming')).toBe(
      'db2 streaming',
    );
    expect(await sh(m('db2'), `grep -h restore_command ${CONFIG_DIR}/conf.d/*.conf /var/lib/postgresql/15/main/postgresql.auto.conf || true`)).toContain('barman-wal-restore');
    // The keep annotation pgplay set during the recovery is released.
    const kept = await listBackups('main');
    expect(kept.every((b) => !String(b.retention_status).startsWith('KEEP'))).toBe(true);
  }, 300_000);

  it('pgplay status reads Barman: the newest backup, barman check --nagios, the free space of its backup_directory', async () => {
    const [newest] = await listBackups('main');
    const checks = await status(streaming);
    expect(checks['backup-age']!.map((f) => [f.severity, f.values?.label])).toEqual([
      ['ok', newest!.backup_id],
      ['ok', newest!.backup_id],
    ]);
    expect(checks['backup-age']![0]!.values?.size_bytes).toBeGreaterThan(1_000_000);
    // backup.pitrWindow is not set: reported, from the oldest finished backup's begin time (show-backup).
    expect(checks['pitr-window']![0]).toMatchObject({ severity: 'ok', values: { oldest_full_age_seconds: expect.any(Number), window_seconds: null } });
    expect(checks.verify![0]).toMatchObject({ severity: 'ok', message: expect.stringMatching(/^barman check main: BARMAN OK/) });
    expect(checks['repository-space']![0]!.message).toContain('/var/lib/barman/main');
  }, 120_000);

  it('the exported standby build (plan --export-shell), run by hand, rebuilds db2 from Barman and it streams', async () => {
    await sh(m('db2'), 'pg_ctlcluster 15 main stop');
    const file = join(work, 'standby-db2.sh');
    const plan = await runCli(['plan', join(PLAYBOOKS, 'standby-from-backup.yml'), '-i', streaming, '-p', 'host=db2', '-p', 'rebuild=true', '--export-shell', file, '--state-dir', stateDir], { env });
    outputs.push(plan.stdout, plan.stderr);
    expect(plan.exitCode, `${plan.stdout.slice(-3000)}\n${plan.stderr}`).toBe(0);
    const script = await readFile(file, 'utf8');
    expect(script).toContain(`barman@${m('bk1').address} 'barman recover --remote-ssh-command '`);
    const parts = [...script.matchAll(/^# {3}part (\d+): on (db1|db2|bk1) \(/gm)].map((p) => ({ n: p[1]!, host: p[2] as 'db1' | 'db2' | 'bk1' }));
    for (const host of new Set(parts.map((p) => p.host))) expect((await m(host).exec(['sh', '-c', 'umask 077 && cat > /tmp/standby-db2.sh'], { input: script })).exitCode).toBe(0);
    await m('db1').psql('CREATE TABLE after_export (id int); INSERT INTO after_export VALUES (1)');
    for (const part of parts) {
      const r = await m(part.host).exec(['sh', '/tmp/standby-db2.sh', part.n], { env: { PGPLAY_REPLICATION_PASSWORD: replicationPassword } });
      expect(r.exitCode, `part ${part.n} on ${part.host}:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-3000)}`).toBe(0);
    }
    expect(await m('db2').psql('SELECT pg_is_in_recovery()')).toBe('t');
    expect(await eventually(() => m('db1').psql("SELECT state FROM pg_stat_replication WHERE application_name = 'db2'"), (v) => v === 'streaming')).toBe('streaming');
    expect(await eventually(() => m('db2').psql('SELECT count(*) FROM after_export').catch(() => ''), (v) => v === '1')).toBe('1');
    expect((await listBackups('main')).every((b) => !String(b.retention_status).startsWith('KEEP'))).toBe(true);
  }, 300_000);

  it('pitr-drill to a restore point: Barman recovers the backup on drill1 and its WAL brings a dropped table back', async () => {
    const db1 = m('db1');
    await db1.psql('CREATE TABLE drill_demo (id int); INSERT INTO drill_demo SELECT generate_series(1, 3)');
    await db1.psql("SELECT pg_create_restore_point('before-drop')");
    await db1.psql('DROP TABLE drill_demo');
    const checks = JSON.stringify([{ sql: 'SELECT count(*) FROM drill_demo', expect: '3' }]);
    const r = await run('pitr-drill.yml', streaming, ['-p', 'target=name', '-p', 'target_value=before-drop', '-p', `checks=${checks}`, '-p', 'keep=true', '--yes']);
    if (r.exitCode !== 0) {
      // What Barman held and what the copy's server said, for the failure message.
      const wals = await m('bk1').exec(['sh', '-c', 'find /var/lib/barman/main -name "0000000*" | sort; tail -n 30 /var/log/barman/barman.log']);
      const log = await m('drill1').exec(['sh', '-c', 'tail -n 40 /var/lib/postgresql/15/drill/log/pgplay-drill.log']);
      const steps = r.events.filter((e) => e.type === 'step-result').map((e) => `${e.step}@${e.host}=${e.status}: ${String((e as { msg?: string }).msg ?? '').slice(0, 300)}`);
      expect.fail(`${steps.join('\n')}\n--- barman:\n${wals.stdout}\n--- drill log:\n${log.stdout}`);
    }
    const drill = m('drill1');
    expect(await drill.psql('SELECT count(*) FROM drill_demo', { port: 5499 })).toBe('3');
    expect(await drill.psql('SELECT pg_is_in_recovery()', { port: 5499 })).toBe('f');
    // The primary still has the table dropped, and is read-write.
    expect(await db1.psql("SELECT pg_is_in_recovery(), to_regclass('public.drill_demo') IS NULL")).toBe('f|t');
  }, 300_000);

  it('retention: a second nightly backup, and barman cron (REDUNDANCY 1) deletes the first', async () => {
    const [first] = await listBackups('main');
    const r = await run('nightly-backup.yml', streaming, ['--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    const after = await listBackups('main');
    expect(after).toHaveLength(1);
    expect(after[0]!.backup_id).not.toBe(first!.backup_id);
    const retention = r.events.find((e) => e.type === 'step-result' && e.step === 'barman/retention');
    expect(retention?.status).toBe('changed');
    expect(JSON.stringify(retention)).toContain(first!.backup_id);
  }, 300_000);

  it('backup_method rsync (a second Barman server of the cluster): an rsync backup listed by Barman', async () => {
    const r = await run('nightly-backup.yml', rsync, ['--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    const conf = await sh(m('bk1'), 'cat /etc/barman.d/main_rsync.conf');
    expect(conf).toContain('backup_method = rsync');
    expect(conf).toContain('reuse_backup = link');
    expect(conf).toContain(`ssh_command = ssh -o BatchMode=yes -o StrictHostKeyChecking=yes postgres@${m('db1').address}`);
    expect((await listBackups('main_rsync')).map((b) => b.status)).toEqual(['DONE']);
    expect(await sh(m('bk1'), 'barman show-backup main_rsync latest | grep -i "backup method\\|Status"', 'barman')).toMatch(/DONE/);
  }, 300_000);

  it('barman check with archiving broken on the primary fails naming the failed checks (also with --nagios)', async () => {
    const db1 = m('db1');
    const checkPlaybook = join(work, 'barman-check.yml');
    await writeFile(
      checkPlaybook,
      stringify({
        name: 'barman-check',
        params: { nagios: { type: 'boolean', default: false } },
        steps: [{ id: 'check', hosts: 'repository', barman: { command: 'check', nagios: '{{params.nagios}}' } }],
      }),
    );
    const healthy = await run(checkPlaybook, rsync);
    expect(healthy.exitCode, failure(healthy)).toBe(0);

    await db1.psql("ALTER SYSTEM SET archive_command = 'false'");
    await db1.psql('SELECT pg_reload_conf()');
    await db1.psql('CREATE TABLE archive_probe AS SELECT 1 AS x; SELECT pg_switch_wal()');
    await eventually(() => db1.psql('SELECT last_failed_time IS NOT NULL AND (last_archived_time IS NULL OR last_failed_time > last_archived_time) FROM pg_stat_archiver'), (v) => v === 't', 60_000);

    const broken = await run(checkPlaybook, rsync);
    expect(broken.exitCode, failure(broken)).toBe(1);
    expect(broken.stdout).toContain('barman check of server main_rsync failed');
    expect(broken.stdout).toContain('continuous_archiving');
    const nagios = await run(checkPlaybook, rsync, ['-p', 'nagios=true']);
    expect(nagios.exitCode, failure(nagios)).toBe(1);
    expect(nagios.stdout).toContain('continuous archiving');
    // pgplay status: Barman's own check (--nagios) critical, naming it.
    expect((await status(rsync)).verify![0]).toMatchObject({ severity: 'critical', message: expect.stringContaining('continuous archiving') });

    await db1.psql('ALTER SYSTEM RESET archive_command');
    await db1.psql('SELECT pg_reload_conf()');
    await eventually(() => db1.psql('SELECT last_archived_time >= last_failed_time FROM pg_stat_archiver'), (v) => v === 't', 60_000);
  }, 300_000);

  it('no password appears in any output', () => {
    for (const text of outputs) {
      expect(text.includes(barmanPassword)).toBe(false);
      expect(text.includes(replicationPassword)).toBe(false);
    }
  });
});
