/**
 * Issue 15, items 1 and 2, on one lab (PostgreSQL 15, pgBackRest 2.45) through the CLI:
 * - data checks on the drill copy: amcheck fails on an index page the test overwrites with junk in the
 *   restored copy (through the drill's prepare_copy command, run once the copy is promoted) and names
 *   the index, while the full read, the row counts and the sentinel pass; amcheck missing on the drill
 *   host (a PostgreSQL installation without it) is a check that could not run, never a pass;
 * - the sentinel is in a copy recovered to latest and absent from one recovered to a time before it;
 * - RTO in phases with bytes restored, RPO in bytes and seconds, against the inventory's targets;
 * - three passed drills give a trend; the third, run under a CPU quota (a real limit: a cgroup), is
 *   flagged as a slowdown.
 * The tests run in order on one lab.
 */
import { execa } from 'execa';
import { cp, mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DrillReport } from '../../src/report/drill.js';
import { cliLimits, CLI } from '../support/cli.js';
import { createLab, events, labUp, PLAYBOOKS, results, type JsonEvent, type TestLab } from './lab-helpers.js';

describe('drill evidence: data checks, sentinel, RTO phases, RPO, targets, trend (issue 15)', () => {
  let lab: TestLab;
  let inventory: string;
  // cgroup v1 (this project's machines) has a cpu hierarchy with cpu.cfs_quota_us; v2 has one tree with
  // cpu.max, the cpu controller enabled for the root's children through cgroup.subtree_control.
  const cgroupV1 = existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us');
  const cgroup = `/sys/fs/cgroup/${cgroupV1 ? 'cpu/' : ''}pgplay-drill-evidence-${process.pid}`;
  async function quarterCpu(): Promise<void> {
    if (!cgroupV1) await writeFile('/sys/fs/cgroup/cgroup.subtree_control', '+cpu');
    await mkdir(cgroup);
    if (cgroupV1) await writeFile(join(cgroup, 'cpu.cfs_quota_us'), '25000');
    else await writeFile(join(cgroup, 'cpu.max'), '25000 100000');
  }

  const runId = (evs: JsonEvent[]) => (evs[0] as { runId?: string }).runId!;
  const drillReport = async (evs: JsonEvent[]) => JSON.parse(await readFile(join(lab.stateDir, 'drills', `${runId(evs)}.json`), 'utf8')) as DrillReport;
  /** The lab's inventory with changes, written beside it; the drills run with -i it. */
  const writeInventory = async (name: string, change: (inv: Record<string, any>) => void) => {
    const inv = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8')) as Record<string, any>;
    change(inv);
    const file = join(lab.dir, '..', `${name}.yml`);
    await writeFile(file, stringify(inv));
    return file;
  };
  const drill = (args: string[], inv = inventory) => lab.run('pitr-drill.yml', ['-i', inv, '--yes', ...args]);

  beforeAll(async () => {
    lab = await createLab(21100, 'drill-evidence');
    await labUp(lab);
    // Reference data that nothing writes after the backup: its index pages come only from the backup.
    await lab.psql('db1', "CREATE TABLE ref_codes AS SELECT g AS id, md5(g::text) AS code FROM generate_series(1, 5000) g; CREATE INDEX ref_codes_code ON ref_codes (code)", 'app');
    // A table without indexes, whose heap the corruption test damages: only the full read can see it.
    await lab.psql('db1', "CREATE TABLE heap_victim AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 2000) g", 'app');
    const backup = await lab.run('nightly-backup.yml');
    if (backup.exitCode !== 0) throw new Error(`nightly-backup failed: ${backup.stdout.slice(-2000)}`);
    inventory = await writeInventory('targets', (inv) => {
      inv.drills = { rto: '10m', rpo: '5m' };
    });
  });

  afterAll(async () => {
    await lab?.down();
    if (existsSync(cgroup)) await rmdir(cgroup);
  });

  it('amcheck fails on a corrupted index page of the copy and names it, the full read names a corrupted table; the drill exits 1, the copy is removed', async () => {
    // Junk over the index's first page after its metapage and over a heap page of heap_victim, in the
    // promoted copy before any check reads them.
    const corrupt = [
      `i=$(psql -X -A -t -q -d app -c "SELECT pg_relation_filepath('ref_codes_code')")`,
      `h=$(psql -X -A -t -q -d app -c "SELECT pg_relation_filepath('heap_victim')")`,
      'dd if=/dev/urandom of="$PGDATA/$i" bs=8192 seek=1 count=1 conv=notrunc status=none',
      'dd if=/dev/urandom of="$PGDATA/$h" bs=8192 seek=1 count=1 conv=notrunc status=none',
    ].join('\n');
    const r = await drill(['-p', 'amcheck=app', '-p', 'read_tables=app', '-p', 'count_tables=app.public.ref_codes', '-p', 'sentinel=true', '-p', `prepare_copy=${corrupt}`]);
    expect(r.exitCode).toBe(1);
    expect(results(r.events)).toEqual(expect.arrayContaining(['prepare-copy@drill1=changed', 'verdict@drill1=failed', 'teardown-data@drill1=changed']));
    const amcheck = r.events.find((e) => e.type === 'step-result' && e.step === 'amcheck');
    expect(amcheck?.msg).toMatch(/amcheck app: FAILED: .*first: ref_codes_code: /);
    const report = await drillReport(r.events);
    expect(report.status).toBe('failed');
    const byName = Object.fromEntries(report.data_checks.map((c) => [c.name, c]));
    expect(byName['amcheck app']).toMatchObject({ status: 'failed', relation: 'ref_codes_code' });
    // The full read finds the damaged heap page (no index covers it) and only that; ref_codes' heap is intact.
    expect(byName['read app']).toMatchObject({ status: 'failed', relation: 'heap_victim', failures: [expect.objectContaining({ relation: 'heap_victim', error: expect.stringMatching(/invalid page in block 1 of relation/) })] });
    expect(byName['rows app.public.ref_codes']).toMatchObject({ status: 'passed', detail: '5000 rows, as on the primary' });
    expect(byName.sentinel?.status).toBe('passed');
    expect(byName.sentinel?.detail).toMatch(/is in the copy; a recovery to latest must find it/);
    expect(report.problems).toEqual([
      expect.stringMatching(/^amcheck app FAILED: 1 of \d+ B-tree indexes in app failed; first: ref_codes_code: /),
      expect.stringMatching(/^read app FAILED: 1 of \d+ tables in app failed; first: heap_victim: invalid page in block 1 of relation /),
    ]);
    expect(await readFile(join(lab.stateDir, 'drills', `${runId(r.events)}.junit.xml`), 'utf8')).toMatch(/<testcase [^>]*name="amcheck app">\s*<failure [^>]*ref_codes_code/);
    expect(await lab.postmasterPid('drill1')).toBeUndefined();
    // The primary was never touched by amcheck: no extension there.
    expect(await lab.psql('db1', "SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'", 'app')).toBe('0');
  });

  it('amcheck missing on the drill host is a check that could not run: the drill fails, never passes', async () => {
    // A PostgreSQL 15 installation without amcheck (its contrib files left out), as a drill host may have.
    const root = join(lab.dir, '..', 'pg15-without-amcheck');
    await mkdir(join(root, 'usr/lib/postgresql'), { recursive: true });
    await mkdir(join(root, 'usr/share/postgresql'), { recursive: true });
    await cp('/usr/lib/postgresql/15', join(root, 'usr/lib/postgresql/15'), { recursive: true });
    await cp('/usr/share/postgresql/15', join(root, 'usr/share/postgresql/15'), { recursive: true, dereference: false });
    for (const f of ['amcheck.control', 'amcheck--1.0.sql']) await rm(join(root, 'usr/share/postgresql/15/extension', f));
    await rm(join(root, 'usr/lib/postgresql/15/lib/amcheck.so'));
    const bare = await writeInventory('without-amcheck', (inv) => {
      inv.drills = { rto: '10m', rpo: '5m' };
      inv.hosts.drill1.postgres.bindir = join(root, 'usr/lib/postgresql/15/bin');
    });
    const r = await drill(['-p', 'amcheck=app'], bare);
    expect(r.exitCode).toBe(1);
    const report = await drillReport(r.events);
    expect(report.status).toBe('failed');
    expect(report.data_checks).toEqual([expect.objectContaining({ name: 'amcheck app', status: 'could-not-run', detail: expect.stringMatching(/^amcheck is not available in app: extension "amcheck" is not available/) })]);
    expect(report.problems).toEqual([expect.stringMatching(/^amcheck app could not run: /)]);
    expect(await readFile(join(lab.stateDir, 'drills', `${runId(r.events)}.junit.xml`), 'utf8')).toMatch(/<testcase [^>]*name="amcheck app">\s*<error [^>]*type="could-not-run"/);
    await rm(root, { recursive: true, force: true });
  });

  let before = '';
  it('a passed drill to latest: amcheck passes, the sentinel is found, RTO phases and RPO are measured and meet the targets, in every format', async () => {
    const out = join(lab.dir, '..', 'reports', 'drill.json');
    await mkdir(join(lab.dir, '..', 'reports'));
    const r = await drill(['-p', 'amcheck=app', '-p', 'sentinel=true', '--report', out]);
    expect(r.events.filter((e) => e.type === 'step-result' && e.status === 'failed').map((e) => `${e.step}: ${e.msg}`)).toEqual([]);
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(await readFile(out, 'utf8')) as DrillReport;
    expect(report.status).toBe('passed');
    expect(report.data_checks.map((c) => [c.name, c.status])).toEqual([
      ['amcheck app', 'passed'],
      ['sentinel', 'passed'],
    ]);
    const p = report.rto.phases;
    expect(p.restore_ms).toBeGreaterThan(0);
    expect(p.recovery_ms).toBeGreaterThan(0);
    expect(p.first_query_ms).not.toBeNull();
    expect(p.restore_ms! + p.recovery_ms! + p.first_query_ms!).toBe(report.rto.ms);
    const info = await lab.pgbackrestInfo();
    expect(report.backup.set).toBe(info.backup.at(-1)!.label);
    expect(p.bytes_restored).toBeGreaterThan(20 * 1024 * 1024);
    expect(p.restore_bytes_per_s).toBe(Math.round((p.bytes_restored! * 1000) / p.restore_ms!));
    // Latest replays past the primary's position at the start: nothing lost.
    expect(report.rpo).toMatchObject({ bytes: 0, seconds: 0 });
    expect(report.rpo.primary_lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(report.targets).toMatchObject({ rto: { target: '10m', met: true }, rpo: { target: '5m', met: true, measured_ms: 0 } });
    const md = await readFile(out.replace('.json', '.md'), 'utf8');
    expect(md).toMatch(/\| RTO \| [\d.]+ s \(target 10m: met\) \|/);
    expect(md).toMatch(/\| RTO phases \| restore [\d.]+ (s|ms) \([\d.]+ MB, [\d.]+ MB\/s\), recovery/);
    expect(md).toMatch(/\| RPO \| 0 bytes, 0\.0 s .*\(target 5m: met\) \|/);
    const junit = await readFile(out.replace('.json', '.junit.xml'), 'utf8');
    expect(junit).toMatch(/<testcase [^>]*name="RTO target 10m"><system-out>[\d.]+ s against 10m: met</);
    expect(junit).toMatch(/<testcase [^>]*name="RPO target 5m"><system-out>0\.0 s against 5m: met</);
    const html = await readFile(out.replace('.json', '.html'), 'utf8');
    expect(html).toContain('<th>RTO phases</th><td>restore ');
    expect(html).toMatch(/<th>RPO<\/th><td>0 bytes, 0\.0 s .*\(target 5m: met\)<\/td>/);
    before = await lab.psql('db1', 'SELECT now()::text');
  });

  it('a drill to a time before the sentinel does not find it, and its RPO is the distance to the start', async () => {
    // A commit after the target, so that recovery has a transaction to stop before.
    await lab.psql('db1', 'CREATE TABLE after_target AS SELECT 1 AS x', 'app');
    const r = await drill(['-p', 'target=time', '-p', `target_value=${before}`, '-p', 'sentinel=true']);
    expect(r.events.filter((e) => e.type === 'step-result' && e.status === 'failed').map((e) => `${e.step}: ${e.msg}`)).toEqual([]);
    expect(r.exitCode).toBe(0);
    const report = await drillReport(r.events);
    expect(report.target_reached).toBe(true);
    expect(report.data_checks).toEqual([expect.objectContaining({ name: 'sentinel', status: 'passed', detail: expect.stringMatching(/is absent from the copy; a recovery to time .* must not find it/) })]);
    // The sentinel row exists on the primary: absent from the copy because of the target, not by accident.
    expect(Number(await lab.psql('db1', 'SELECT count(*) FROM pgplay.drill_sentinel'))).toBeGreaterThanOrEqual(3);
    expect(report.rpo.bytes).toBeGreaterThan(0);
    expect(report.rpo.seconds).toBeGreaterThan(0);
    expect(report.targets?.rpo?.measured_ms).toBe(Math.round(report.rpo.seconds! * 1000));
  });

  it('a third drill under a CPU quota is flagged as a slowdown against the previous one; a 100ms RTO target is missed', async () => {
    // A real limit: the whole drill (pgplay, pgBackRest, the copy's server) in a cgroup with a quarter of a CPU.
    await quarterCpu();
    const tight = await writeInventory('tight', (inv) => {
      inv.drills = { rto: '100ms', rpo: '5m' };
    });
    const child = await execa('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, 'node', CLI, 'run', join(PLAYBOOKS, 'pitr-drill.yml'), '-i', tight, '--yes', '--output', 'json'], {
      env: lab.env,
      cwd: join(lab.dir, '..'),
      reject: false,
      ...cliLimits(),
    });
    const evs = events(child.stdout);
    expect(child.exitCode, child.stderr).toBe(0);
    const report = await drillReport(evs);
    expect(report.status).toBe('passed');
    expect(report.trend?.slowdown).toBe(true);
    expect(report.trend?.previous?.status).toBe('passed');
    expect(report.targets?.rto).toMatchObject({ target: '100ms', met: false });
    expect(report.targets?.rpo).toMatchObject({ met: true });
    const text = await readFile(join(lab.stateDir, 'drills', `${runId(evs)}.txt`), 'utf8');
    expect(text).toMatch(/RTO +[\d.]+ s .*: target 100ms MISSED/);
    expect(text).toMatch(/SLOWDOWN: beyond 25 %/);
    const junit = await readFile(join(lab.stateDir, 'drills', `${runId(evs)}.junit.xml`), 'utf8');
    expect(junit).toMatch(/<testcase [^>]*name="RTO target 100ms">\s*<failure /);
    // The history: three passed drills in a row, the last one flagged.
    const list = await lab.pgplay(['drills', '--output', 'json']);
    const drills = JSON.parse(list.stdout) as Array<{ status: string; run_id: string; slowdown: boolean; rto_ms: number; rpo_s: number | null }>;
    const passed = drills.filter((d) => d.status === 'passed');
    expect(passed).toHaveLength(3);
    expect(passed.at(-1)!.slowdown).toBe(true);
    expect(passed.at(-1)!.run_id).toBe(runId(evs));
    expect(passed.every((d) => d.rpo_s !== null)).toBe(true);
  }, 240_000);
});
