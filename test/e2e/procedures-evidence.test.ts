/**
 * Issue 10, findings 6, 9 and 13 on one lab (PostgreSQL 15, pgBackRest 2.45), through the CLI:
 * - exit 2 means nothing ran: plan on a cluster never backed up, a secret that cannot be used, an
 *   unwritable --report path, all found before the first step;
 * - verify ignores WAL gaps older than the oldest backup, and only those;
 * - a drill cannot pass while the primary's archiving is broken, and its copy is removed after a
 *   failure or Ctrl-C.
 * The tests run in order on one lab (each leaves it as the next expects).
 */
import { execa } from 'execa';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DrillReport } from '../../src/report/drill.js';
import { CLI, createLab, eventually, events, labUp, PLAYBOOKS, results, type JsonEvent, type TestLab } from './lab-helpers.js';

describe('evidence before success (issue 10: findings 6, 9, 13)', () => {
  let lab: TestLab;
  const archiveDir = () => join(lab.dir, 'bk1', 'repo', 'archive', 'lab', '15-1', '0000000100000000');
  const archived = async () => (await readdir(archiveDir())).filter((f) => /^[0-9A-F]{24}-/.test(f)).sort();
  const drillReport = async (r: { events: JsonEvent[] }) => {
    const runId = (r.events[0] as { runId?: string }).runId!;
    return JSON.parse(await readFile(join(lab.stateDir, 'drills', `${runId}.json`), 'utf8')) as DrillReport;
  };
  /** Writes something, switches to a new WAL segment and waits until the primary archived it. */
  const switchWal = async (table: string) => {
    await lab.psql('db1', `CREATE TABLE ${table} ()`);
    const name = await lab.psql('db1', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
    await lab.psql('db1', 'SELECT pg_switch_wal()');
    const seen = await eventually(() => lab.psql('db1', 'SELECT coalesce(last_archived_wal, \'\') FROM pg_stat_archiver'), (w) => w >= name);
    expect(seen >= name).toBe(true);
    return name;
  };

  beforeAll(async () => {
    lab = await createLab(26710, 'evidence');
    await labUp(lab);
  });

  afterAll(async () => {
    await lab?.down();
  });

  it('plan nightly-backup works on a cluster never backed up, before pgBackRest is configured (finding 13)', async () => {
    // The backup host's pgbackrest.conf is what nightly-backup renders first: without it `info` cannot run under plan.
    const conf = join(lab.dir, 'bk1', 'pgbackrest.conf');
    await rename(conf, `${conf}.away`);
    try {
      const r = await lab.pgplay(['plan', join(PLAYBOOKS, 'nightly-backup.yml'), '--output', 'json']);
      const evs = events(r.stdout);
      expect(evs.at(-1)?.error?.message).toBeUndefined();
      expect(r.exitCode).toBe(0);
      expect(results(evs)).toEqual(expect.arrayContaining(['pgbackrest/repository@bk1=skipped', 'pgbackrest/backup-full@bk1=changed', 'pgbackrest/backup-changes@bk1=skipped']));
      // plan changed nothing
      await expect(stat(conf)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await rename(`${conf}.away`, conf);
    }
    expect((await lab.pgbackrestInfo()).backup).toEqual([]);
  });

  it('nightly-backup takes the first backup', async () => {
    const r = await lab.run('nightly-backup.yml');
    expect(r.events.at(-1)?.error?.message).toBeUndefined();
    expect(r.exitCode).toBe(0);
    expect((await lab.pgbackrestInfo()).backup.map((b) => b.type)).toEqual(['full']);
  });

  it('an unwritable --report path is refused before the drill starts (exit 2, nothing ran) (finding 13)', async () => {
    const blocker = join(lab.dir, '..', 'a-file');
    await writeFile(blocker, 'not a directory\n');
    const report = join(blocker, 'drill.json');
    const r = await lab.run('pitr-drill.yml', ['--report', report, '--yes']);
    expect(r.exitCode).toBe(2);
    // With --output json the refusal is the run's one JSON error event.
    expect(errorMessages(r.events)).toContain(`cannot write --report ${report}`);
    expect(results(r.events)).toEqual([]);
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
    await rm(blocker);
  });

  it('a replication password with a line break is refused before the first step (exit 2, nothing restored) (finding 13)', async () => {
    const secret = join(lab.dir, 'secrets', 'replication-password');
    const original = await readFile(secret, 'utf8');
    await writeFile(secret, 'first-half\nsecond-half\n');
    try {
      const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
      expect(r.exitCode).toBe(2);
      expect(errorMessages(r.events)).toContain('replication.password');
      expect(errorMessages(r.events)).toContain('line break');
      expect(r.stderr + r.stdout).not.toContain('second-half');
      expect(results(r.events)).toEqual([]);
      await expect(stat(lab.pgdata('db2'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await writeFile(secret, original, { mode: 0o600 });
    }
  });

  it('verify ignores a WAL gap older than the oldest backup, as a note (finding 9)', async () => {
    const [first] = (await lab.pgbackrestInfo()).backup;
    // Three segments after the first backup, the middle one lost.
    await switchWal('gap_a');
    const lost = await switchWal('gap_b');
    await switchWal('gap_c');
    const full = await lab.run('nightly-backup.yml', ['-p', 'type=full']);
    expect(full.exitCode).toBe(0);
    const second = (await lab.pgbackrestInfo()).backup.at(-1)!;
    expect(second.archive.start > lost).toBe(true);
    // Retention expires the first backup; its WAL stays until an expire with a full retention count runs.
    const expire = await execa('runuser', ['-u', 'postgres', '--', 'pgbackrest', `--config=${join(lab.dir, 'bk1', 'pgbackrest.conf')}`, '--stanza=lab', `--set=${first!.label}`, 'expire'], { cwd: '/', reject: false });
    expect(expire.exitCode).toBe(0);
    const file = (await archived()).find((f) => f.startsWith(lost))!;
    await rm(join(archiveDir(), file));

    const r = await lab.run('nightly-backup.yml');
    const verify = r.events.find((e) => e.type === 'step-result' && e.step === 'pgbackrest/verify');
    expect(verify?.msg).not.toMatch(/problem/);
    expect(r.exitCode).toBe(0);
    expect(verify?.status).toBe('ok');
    const note = /segments missing between (\S+) and (\S+) \(timeline 00000001\), older than the oldest backup (\S+)/.exec(verify?.msg ?? '');
    expect(note?.[3]).toBe(second.label);
    expect(note![1]! < lost && lost < note![2]!).toBe(true);
    // The gap is still there: the note is about a real hole.
    expect((await archived()).some((f) => f.startsWith(lost))).toBe(false);
  });

  it('verify still fails a WAL gap after the oldest backup started (finding 9)', async () => {
    await switchWal('late_a');
    const lost = await switchWal('late_b');
    await switchWal('late_c');
    const file = (await archived()).find((f) => f.startsWith(lost))!;
    await rm(join(archiveDir(), file));
    const r = await lab.run('nightly-backup.yml');
    expect(r.exitCode).toBe(1);
    const verify = r.events.find((e) => e.type === 'step-result' && e.step === 'pgbackrest/verify');
    expect(verify?.status).toBe('failed');
    expect(verify?.msg).toMatch(new RegExp(`segments missing between \\S+ and \\S+ \\(timeline 00000001\\)`));
    // A new full backup after the gap lets the drills below restore and replay to the end.
    expect(results((await lab.run('nightly-backup.yml', ['-p', 'type=full'])).events)).toContain('pgbackrest/backup-full@bk1=changed');
  });

  it('a drill fails while the primary cannot archive, with pgBackRest\'s own error, and removes its copy (finding 6)', async () => {
    await lab.psql('db1', "ALTER SYSTEM SET archive_command = 'false'");
    await lab.psql('db1', 'SELECT pg_reload_conf()');
    try {
      await lab.psql('db1', 'CREATE TABLE lost_to_archiving AS SELECT 1 AS x; SELECT pg_switch_wal()');
      const failed = await eventually(() => lab.psql('db1', 'SELECT failed_count FROM pg_stat_archiver'), (n) => Number(n) > 0);
      expect(Number(failed)).toBeGreaterThan(0);

      const r = await lab.run('pitr-drill.yml', ['--yes']);
      expect(r.exitCode).toBe(1);
      expect(results(r.events)).toEqual(expect.arrayContaining(['teardown-data@drill1=changed', 'verdict@drill1=failed']));
      const report = await drillReport(r);
      expect(report.status).toBe('failed');
      expect(report.problems).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^the primary db1 failed to archive .*since its last success/),
          expect.stringMatching(/archive_command 'false' must contain pgbackrest/),
          expect.stringMatching(/^the WAL current at the drill's start \(\S+ on db1\) never reached the repository/),
        ]),
      );
      expect(report.teardown).toBe('removed');
      await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
      const text = await readFile(join(lab.stateDir, 'drills', `${(r.events[0] as { runId?: string }).runId}.txt`), 'utf8');
      expect(text).toMatch(/^DRILL FAILED/);
    } finally {
      await lab.psql('db1', 'ALTER SYSTEM RESET archive_command');
      await lab.psql('db1', 'SELECT pg_reload_conf()');
    }
    // Archiving works again: the same drill passes.
    await eventually(() => lab.psql('db1', 'SELECT last_archived_time > last_failed_time FROM pg_stat_archiver'), (v) => v === 't', 60_000);
    const again = await lab.run('pitr-drill.yml', ['--yes', '-p', 'checks_database=postgres', '-p', `checks=${JSON.stringify([{ sql: 'SELECT x FROM lost_to_archiving', expect: '1' }])}`]);
    const report = await drillReport(again);
    expect(again.events.filter((e) => e.type === 'step-result' && e.status === 'failed').map((e) => `${e.step}: ${e.msg}`)).toEqual([]);
    expect(report.problems).toEqual([]);
    expect(again.exitCode).toBe(0);
    expect(report).toMatchObject({ status: 'passed', teardown: 'removed' });
    expect(report.checks.map((c) => c.ok)).toEqual([true]);
  });

  it('Ctrl-C during a drill still removes the copy, and the report says so (finding 6)', async () => {
    const child = execa('node', [CLI, 'run', join(PLAYBOOKS, 'pitr-drill.yml'), '--output', 'json', '--yes'], { env: lab.env, cwd: join(lab.dir, '..'), reject: false });
    let out = '';
    let sent = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      // Once the restored copy is being started: it exists on disk and a server is coming up on it.
      if (!sent && events(out.slice(0, out.lastIndexOf('\n') + 1)).some((e) => e.type === 'step-start' && e.step === 'start')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const r = await child;
    expect(sent).toBe(true);
    expect(r.exitCode).toBe(130);
    const evs = events(r.stdout);
    expect(results(evs)).toEqual(expect.arrayContaining(['teardown-stop@drill1=changed', 'teardown-data@drill1=changed']));
    expect(await lab.postmasterPid('drill1')).toBeUndefined();
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
    const report = await drillReport({ events: evs });
    expect(report.status).toBe('failed');
    expect(report.teardown).toBe('removed');
    expect(report.problems).toContain('the drill was interrupted');
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
  });

  it('the teardown that runs after failures never runs after a refusal: a drill aimed at the primary leaves it alone', async () => {
    const pid = await lab.postmasterPid('db1');
    const r = await lab.run('pitr-drill.yml', ['-p', 'host=db1', '--yes']);
    expect(r.exitCode).toBe(3);
    expect(results(r.events)).toEqual(expect.arrayContaining(['teardown-stop@db1=skipped', 'teardown-data@db1=skipped']));
    expect(await lab.postmasterPid('db1')).toBe(pid);
    expect(await lab.psql('db1', 'SELECT count(*) FROM accounts', 'app')).toBe('1000');
  });
});

/** The messages of the JSON error events (--output json prints errors as events, not on stderr). */
function errorMessages(evs: JsonEvent[]): string {
  return evs
    .filter((e) => e.type === 'error')
    .flatMap((e) => ((e as { errors?: Array<{ message: string }> }).errors ?? []).map((x) => x.message))
    .join('\n');
}
