import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DrillReport } from '../../src/report/drill.js';
import { parse as parseJunit } from 'junit2json';
import { screenshot } from '../support/chromium.js';
import { countColour, decodePng } from '../support/png.js';
import { createLab, events, labUp, PLAYBOOKS, results, type TestLab } from './lab-helpers.js';

const CHECKS = JSON.stringify([
  { sql: 'SELECT count(*) FROM pitr_demo', expect: '1' },
  { sql: 'SELECT note FROM pitr_demo', expect: 'before the mistake' },
]);

describe('pitr-drill.yml on the lab (PostgreSQL 15, pgBackRest 2.45)', () => {
  let lab: TestLab;
  let primaryBefore: string;
  let beforeDrop: string;

  beforeAll(async () => {
    lab = await createLab(26030, 'drill');
    await labUp(lab);
    const backup = await lab.run('nightly-backup.yml');
    if (backup.exitCode !== 0) throw new Error(`nightly-backup failed: ${backup.stdout.slice(-2000)}`);
    // The mistake to recover from: a row, a restore point, then the table is dropped.
    await lab.psql('db1', "CREATE TABLE pitr_demo (id int, note text); INSERT INTO pitr_demo VALUES (1, 'before the mistake')");
    await lab.psql('db1', "SELECT pg_create_restore_point('before-drop')");
    // A moment between the row and the drop, for the drill to a point in time.
    await new Promise((r) => setTimeout(r, 1100));
    beforeDrop = await lab.psql('db1', "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
    await new Promise((r) => setTimeout(r, 1100));
    await lab.psql('db1', 'DROP TABLE pitr_demo');
    primaryBefore = await lab.psql('db1', "SELECT system_identifier, pg_is_in_recovery(), (SELECT timeline_id FROM pg_control_checkpoint()) FROM pg_control_system()");
  });

  afterAll(async () => {
    await lab?.down();
  });

  it('brings the dropped table back in a scratch copy, proves the target, measures RTO and recovery point, tears down', async () => {
    const reportFile = join(lab.dir, '..', 'drill.json');
    const pid = await lab.postmasterPid('db1');
    const r = await lab.pgplay([
      'run', join(PLAYBOOKS, 'pitr-drill.yml'),
      '-p', 'target=name', '-p', 'target_value=before-drop', '-p', `checks=${CHECKS}`,
      '--report', reportFile, '--yes',
    ]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('DRILL PASSED: point-in-time recovery of cluster lab on drill1');
    expect(r.stdout).toContain(`drill report: ${reportFile} (also .txt, .md, .junit.xml, .html beside it)`);

    const report = JSON.parse(await readFile(reportFile, 'utf8')) as DrillReport;
    expect(report).toMatchObject({
      kind: 'pgplay-drill-report',
      status: 'passed',
      problems: [],
      host: 'drill1',
      target: { type: 'name', value: 'before-drop' },
      target_reached: true,
      teardown: 'removed',
      timeline: 2,
    });
    expect(report.proof.some((l) => l.includes('recovery stopping at restore point "before-drop"'))).toBe(true);
    expect(report.rto.ms).toBeGreaterThan(0);
    expect(report.rto.ms).toBeLessThan(120_000);
    expect(report.recovery_point.source).toBe('log');
    expect(report.recovery_point.last_transaction).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+00$/);
    expect(report.recovery_point.restore_point_time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+00$/);
    expect(report.checks.map((c) => `${c.got}:${c.ok}`)).toEqual(['1:true', 'before the mistake:true']);
    const latest = (await lab.pgbackrestInfo()).backup.at(-1)!;
    expect(report.backup.set).toBe(latest.label);
    expect(await readFile(join(lab.dir, '..', 'drill.txt'), 'utf8')).toContain('target           name "before-drop": reached');

    // Every format beside the JSON, and the stored copies under the state directory.
    const base = join(lab.dir, '..', 'drill');
    expect(await readFile(`${base}.md`, 'utf8')).toMatch(/^# Restore drill PASSED: cluster lab\n[\s\S]*\| target reached \| passed \|/);
    const junit = (await parseJunit(await readFile(`${base}.junit.xml`, 'utf8'))) as { tests?: number; failures?: number; errors?: number; testsuite?: Array<{ testcase?: Array<{ name?: string }> }> };
    expect([junit.failures, junit.errors]).toEqual([0, 0]);
    expect(junit.testsuite![0]!.testcase!.map((t) => t.name)).toEqual(expect.arrayContaining(['target reached', 'check 1: SELECT count(*) FROM pitr_demo']));
    const stored = join(lab.stateDir, 'drills', report.run.id);
    for (const ext of ['.json', '.txt', '.md', '.junit.xml', '.html']) expect((await stat(`${stored}${ext}`)).mode & 0o777).toBe(0o600);
    // Rebuilt from the journal, the same JUnit.
    const rebuilt = await lab.pgplay(['report', report.run.id, '--format', 'junit']);
    // (execa strips the output's final newline)
    expect(rebuilt.stdout).toBe((await readFile(`${base}.junit.xml`, 'utf8')).trimEnd());
    // The HTML page as a browser shows it: the verdict in green and the RTO point of the chart.
    const png = decodePng(await screenshot(`${base}.html`));
    expect(countColour(png, '#11702b'), 'green of the PASSED verdict and the chart point').toBeGreaterThan(50);
    expect(await readFile(`${base}.html`, 'utf8')).toMatch(/<svg id="trend-chart"[\s\S]*<circle class="pass"/);

    // Torn down: no server, no scratch PGDATA.
    expect(await lab.postmasterPid('drill1')).toBeUndefined();
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
    // The primary is untouched: same server, same timeline, the table still dropped.
    expect(await lab.postmasterPid('db1')).toBe(pid);
    expect(await lab.psql('db1', "SELECT system_identifier, pg_is_in_recovery(), (SELECT timeline_id FROM pg_control_checkpoint()) FROM pg_control_system()")).toBe(primaryBefore);
    expect(await lab.psql('db1', "SELECT to_regclass('public.pitr_demo') IS NULL")).toBe('t');
    // The copy promoted onto timeline 2 with archiving off: nothing of it reached the repository.
    const archive = await readdir(join(lab.dir, 'bk1', 'repo', 'archive', 'lab', '15-1'));
    expect(archive.filter((f) => f.startsWith('00000002'))).toEqual([]);
  });

  it('a drill to a point in time stops before the first commit after it', async () => {
    const r = await lab.run('pitr-drill.yml', ['-p', 'target=time', '-p', `target_value=${beforeDrop}`, '-p', `checks=${CHECKS}`, '--yes']);
    expect(r.exitCode).toBe(0);
    const runId = (r.events[0] as { runId?: string }).runId!;
    const report = JSON.parse(await readFile(join(lab.stateDir, 'drills', `${runId}.json`), 'utf8')) as DrillReport;
    expect(report).toMatchObject({ status: 'passed', target: { type: 'time', value: beforeDrop }, target_reached: true, teardown: 'removed' });
    expect(report.proof.some((l) => /recovery stopping before commit of transaction \d+, time /.test(l))).toBe(true);
    expect(Date.parse(report.recovery_point.last_transaction!.replace(' ', 'T').replace('+00', 'Z'))).toBeLessThan(Date.parse(beforeDrop.replace(' ', 'T').replace('+00', 'Z')));
  });

  it('keep=true leaves the promoted copy running; the next drill replaces it', async () => {
    const r = await lab.run('pitr-drill.yml', ['-p', 'target=latest', '-p', 'keep=true', '-p', 'checks_database=app', '-p', `checks=${JSON.stringify([{ sql: 'SELECT count(*) FROM accounts', expect: '1000' }])}`, '--yes']);
    expect(r.exitCode).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['teardown-stop@drill1=skipped', 'teardown-data@drill1=skipped', 'verdict@drill1=ok']));
    expect(await lab.psql('drill1', 'SELECT count(*) FROM accounts', 'app')).toBe('1000');
    expect(await lab.psql('drill1', 'SELECT pg_is_in_recovery()')).toBe('f');
    const runId = (r.events[0] as { runId?: string }).runId!;
    const report = JSON.parse(await readFile(join(lab.stateDir, 'drills', `${runId}.json`), 'utf8')) as DrillReport;
    expect(report).toMatchObject({ status: 'passed', target_reached: true, teardown: 'kept', target: { type: 'latest', value: null } });
  });

  it("the drill's ready step, a wait, fails within its timeout on a copy that never leaves recovery", async () => {
    // The kept copy is turned into one that stays in recovery for ever (a standby with no upstream),
    // and the drill's own ready step (taken from pitr-drill.yml) runs against it with a 1 s timeout.
    const pg = (args: string[]) => execa('runuser', ['-u', 'postgres', '--', ...args], { cwd: '/' });
    await pg(['/usr/lib/postgresql/15/bin/pg_ctl', 'stop', '-D', lab.pgdata('drill1'), '-m', 'fast', '-w']);
    await pg(['touch', join(lab.pgdata('drill1'), 'standby.signal')]);
    await pg(['/usr/lib/postgresql/15/bin/pg_ctl', 'start', '-D', lab.pgdata('drill1'), '-l', join(lab.pgdata('drill1'), 'log', 'pgplay-drill.log'), '-w']);
    expect(await lab.psql('drill1', 'SELECT pg_is_in_recovery()')).toBe('t');
    const drill = parseYaml(await readFile(join(PLAYBOOKS, 'pitr-drill.yml'), 'utf8')) as { params: Record<string, unknown>; steps: Array<Record<string, unknown>> };
    const { when: _startedFirst, ...ready } = drill.steps.find((st) => st.id === 'ready')!;
    const playbook = join(lab.dir, '..', 'drill-ready.yml');
    await writeFile(playbook, stringifyYaml({ name: 'drill-ready', params: { host: drill.params.host, timeout: drill.params.timeout }, steps: [ready] }));
    const r = await lab.pgplay(['run', playbook, '-p', 'timeout=1s', '--output', 'json']);
    const ev = events(r.stdout).find((e) => e.type === 'step-result' && e.step === 'ready') as { status?: string; error?: { message?: string } } | undefined;
    expect(ev?.status).toBe('failed');
    expect(ev?.error?.message).toContain('condition not met after 1s: pg_is_in_recovery() = true');
    // It only waited: the copy is still there, still in recovery.
    expect(await lab.psql('drill1', 'SELECT pg_is_in_recovery()')).toBe('t');
  });

  it('a target that is never reached fails the drill (exit 1), and the report says why', async () => {
    const kept = await lab.postmasterPid('drill1');
    expect(kept).toBeGreaterThan(0);
    const r = await lab.run('pitr-drill.yml', ['-p', 'target=name', '-p', 'target_value=no-such-point', '--yes']);
    expect(r.exitCode).toBe(1);
    const res = results(r.events);
    expect(res).toEqual(expect.arrayContaining(['stop-previous@drill1=changed', 'teardown-data@drill1=changed', 'verdict@drill1=failed']));
    // pg_ctl may see the copy accept read-only connections just before recovery ends with FATAL: then
    // the start succeeds and the ready step notices the server is gone.
    expect(res.includes('start@drill1=failed') || res.includes('ready@drill1=failed')).toBe(true);
    const runId = (r.events[0] as { runId?: string }).runId!;
    const report = JSON.parse(await readFile(join(lab.stateDir, 'drills', `${runId}.json`), 'utf8')) as DrillReport;
    expect(report.status).toBe('failed');
    expect(report.target_reached).toBe(false);
    expect(report.problems).toContain('recovery ended before configured recovery target was reached');
    expect(report.teardown).toBe('removed');
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
  });

  it('checks that cannot run fail the drill, and the copy is still torn down', async () => {
    const r = await lab.run('pitr-drill.yml', ['-p', 'checks=[{"sql": "SELECT 1"', '--yes']);
    expect(r.exitCode).toBe(1);
    expect(results(r.events)).toEqual(expect.arrayContaining(['ready@drill1=ok', 'checks@drill1=failed', 'teardown-data@drill1=changed', 'verdict@drill1=failed']));
    const runId = (r.events[0] as { runId?: string }).runId!;
    const report = JSON.parse(await readFile(join(lab.stateDir, 'drills', `${runId}.json`), 'utf8')) as DrillReport;
    expect(report.status).toBe('failed');
    expect(report.target_reached).toBe(true);
    expect(report.problems).toEqual([expect.stringMatching(/^the checks could not run: .*invalid input syntax for type json/)]);
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses (exit 3) to restore a drill over a primary or a standby', async () => {
    const r = await lab.run('pitr-drill.yml', ['-p', 'host=db1', '--yes']);
    expect(r.exitCode).toBe(3);
    expect(r.events.at(-1)!.error!.message).toContain('db1 has role primary: a drill restores only into a host with role drill, never over a primary or a standby');
    // A target without its value is bad input, found before anything runs.
    const noValue = await lab.run('pitr-drill.yml', ['-p', 'target=time', '--yes']);
    expect(noValue.exitCode).toBe(2);
    expect(noValue.stdout).toContain('param \\"target_value\\" (for target=time): value \\"\\" is empty, but target time needs one');
  });
  it('pgplay drills lists the passed drills oldest first with the RTO change against the previous one', async () => {
    const r = await lab.pgplay(['drills', '--output', 'json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as Array<{ status: string; rto_ms: number; rto_change: number | null; cluster: string }>;
    const passed = rows.filter((d) => d.status === 'passed');
    expect(passed.length).toBeGreaterThanOrEqual(2);
    expect(passed[0]!.rto_change).toBeNull();
    expect(passed[1]!.rto_change).toBeCloseTo((passed[1]!.rto_ms - passed[0]!.rto_ms) / passed[0]!.rto_ms, 5);
    const human = await lab.pgplay(['drills']);
    expect(human.stdout.split('\n')[0]).toMatch(/^started\s+cluster\s+verdict\s+RTO\s+vs previous/);
  });
});
