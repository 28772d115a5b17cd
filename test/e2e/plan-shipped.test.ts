/**
 * `pgplay plan` of every shipped procedure against a real lab (ports 21540-21542), with the params a DBA
 * would give: plan is the dry run before 3 a.m., so none may be refused at load or break half-way, and
 * none may change anything. The lab: db1 primary, db2 its standby (built from a backup), bk1 the
 * pgBackRest repository, drill1 stopped. After every plan: the same servers run (same postmaster pids)
 * in the same roles, no slot, backup or row was added, the files pgplay manages are as they were, and
 * nothing was kept aside. Then one real restore.yml in place, whose room guards (du, stat -f) and proof
 * of the target changed for plan.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshotTree } from '../support/snapshot.js';
import { createLab, events, labUp, results, type JsonEvent, type TestLab } from './lab-helpers.js';

const BASE_PORT = 21540;

/** Each shipped playbook with what a DBA would type, and the exit plan must give on the lab. */
const PLANS: Array<{ playbook: string; params: string[]; args?: string[]; exit: number; refusedAt?: string }> = [
  { playbook: 'lab.yml', params: ['replication_password=plan-secret-1'], exit: 0 },
  { playbook: 'prepare.yml', params: [], exit: 0 },
  { playbook: 'nightly-backup.yml', params: [], exit: 0 },
  { playbook: 'logical-backup.yml', params: [], exit: 0 },
  { playbook: 'standby-from-backup.yml', params: ['host=db2'], exit: 0 },
  { playbook: 'pitr-drill.yml', params: ['target=immediate'], exit: 0 },
  { playbook: 'recover-table.yml', params: ['database=app', 'tables=public.accounts', 'into=public.accounts_back'], exit: 0 },
  { playbook: 'promote.yml', params: ['candidate=db2'], exit: 0 },
  { playbook: 'switchover.yml', params: ['candidate=db2'], exit: 0 },
  { playbook: 'rejoin.yml', params: ['host=db2'], exit: 0 },
  { playbook: 'restore.yml', params: ['host=db1', 'in_place=confirmed'], exit: 0 },
  { playbook: 'restore.yml', params: ['host=db1', 'in_place=confirmed', 'target=immediate'], exit: 0 },
  // --limit narrows where steps run, not what they know: the steps on the host read the other hosts' facts
  // (the upstream's, the primary's) as a run without --limit does.
  { playbook: 'standby-from-backup.yml', params: ['host=db2'], args: ['--limit', 'db2'], exit: 0 },
  { playbook: 'promote.yml', params: ['candidate=db2'], args: ['--limit', 'db2'], exit: 0 },
  { playbook: 'pitr-drill.yml', params: ['target=immediate'], args: ['--limit', 'drill1,db1,bk1'], exit: 0 },
  // A --limit that leaves out a step whose register a step that runs reads is refused before the first step:
  // the drill's verdict reads the primary's WAL position at its start; the switchover, after stopping the
  // primary (a guard, which runs outside the limit), reads its pg_controldata.
  { playbook: 'pitr-drill.yml', params: ['target=immediate'], args: ['--limit', 'drill1'], exit: 2, refusedAt: 'sentinel-check' },
  { playbook: 'switchover.yml', params: ['candidate=db2'], args: ['--limit', 'db2'], exit: 2, refusedAt: 'cutover/shutdown-checkpoint' },
  // Plan runs the guards: a restore beside the live primary is refused as the run would be.
  { playbook: 'restore.yml', params: ['host=db2'], exit: 3, refusedAt: 'no-other-primary' },
];

describe('pgplay plan of every shipped playbook on a lab changes nothing', () => {
  let lab: TestLab;

  /** What a plan must leave as it is. */
  const state = async () => {
    const files: Record<string, string> = {};
    const hash = async (path: string) => {
      try {
        return createHash('sha256').update(await readFile(path)).digest('hex');
      } catch {
        return 'absent';
      }
    };
    for (const h of ['db1', 'db2'] as const) {
      for (const f of ['postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'conf.d/pgplay.conf', 'conf.d/pgplay-recovery.conf', 'standby.signal', 'recovery.signal']) {
        files[`${h}/data/${f}`] = await hash(join(lab.pgdata(h), f));
      }
      files[`${h}/pgpass`] = await hash(join(lab.dir, h, 'pgpass'));
    }
    for (const h of ['db1', 'db2', 'bk1', 'drill1']) files[`${h}/pgbackrest.conf`] = await hash(join(lab.dir, h, 'pgbackrest.conf'));
    files['inventory.yml'] = await hash(join(lab.dir, 'inventory.yml'));
    return {
      files,
      // A restore keeps the current PGDATA aside as data.pgplay-<time>: nothing new beside any data directory.
      entries: Object.fromEntries(await Promise.all(['db1', 'db2', 'drill1'].map(async (h) => [h, (await readdir(join(lab.dir, h))).sort()]))),
      drill1: await snapshotTree(join(lab.dir, 'drill1')),
      pids: { db1: await lab.postmasterPid('db1'), db2: await lab.postmasterPid('db2'), drill1: await lab.postmasterPid('drill1') },
      inRecovery: { db1: await lab.psql('db1', 'SELECT pg_is_in_recovery()'), db2: await lab.psql('db2', 'SELECT pg_is_in_recovery()') },
      slots: await lab.psql('db1', 'SELECT string_agg(slot_name, \',\' ORDER BY slot_name) FROM pg_replication_slots'),
      timeline: await lab.psql('db1', 'SELECT timeline_id FROM pg_control_checkpoint()'),
      tables: await lab.psql('db1', "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY 1) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')", 'app'),
      rows: await lab.psql('db1', 'SELECT count(*) FROM accounts', 'app'),
      backups: (await lab.pgbackrestInfo()).backup.map((b) => b.label),
    };
  };

  beforeAll(async () => {
    lab = await createLab(BASE_PORT, 'plan-shipped');
    await labUp(lab);
    const backup = await lab.run('nightly-backup.yml');
    if (backup.exitCode !== 0) throw new Error(`nightly-backup failed: ${backup.stdout.slice(-3000)}${backup.stderr}`);
    const standby = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    if (standby.exitCode !== 0) throw new Error(`standby-from-backup failed: ${standby.stdout.slice(-3000)}${standby.stderr}`);
  }, 300_000);

  afterAll(async () => {
    await lab?.down();
  });

  it('plans each shipped procedure to its end (or its guard refusal), and the lab is as it was', async () => {
    const before = await state();
    expect(before.inRecovery).toEqual({ db1: 'f', db2: 't' });
    expect(before.pids.db1 && before.pids.db2).toBeTruthy();
    const outcomes: string[] = [];
    const expected: string[] = [];
    const restorePlans: string[][] = [];
    for (const { playbook, params, args = [], exit, refusedAt } of PLANS) {
      const r = await lab.pgplay(['plan', playbook, '--output', 'json', ...params.flatMap((p) => ['-p', p]), ...args]);
      const evs = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as JsonEvent & { error?: { step?: string } });
      const end = evs.find((e) => e.type === 'run-end');
      const refused = end?.error?.step ?? '';
      outcomes.push(`${playbook} ${[...params, ...args].join(' ')}: exit ${r.exitCode}${refused ? ` at ${refused}` : ''}${r.exitCode !== exit ? ` ${r.stderr}${JSON.stringify(end?.error ?? evs.find((e) => e.type === 'error'))}` : ''}`);
      expected.push(`${playbook} ${[...params, ...args].join(' ')}: exit ${exit}${refusedAt ? ` at ${refusedAt}` : ''}`);
      if (playbook === 'restore.yml' && exit === 0) restorePlans.push(results(evs));
    }
    expect(outcomes).toEqual(expected);
    for (const shown of restorePlans) {
      // The steps of the whole procedure are shown: the room guards ran for real, the rest would change.
      expect(shown).toEqual(expect.arrayContaining(['room@db1=ok', 'room-free@db1=ok', 'room-enough@db1=ok', 'stop@db1=changed', 'keep-aside@db1=changed', 'recover/start-pg-ctl@db1=ok', 'target-reached@db1=skipped']));
      expect(shown.some((s) => s.startsWith('rebuild-standbys[0]/'))).toBe(true);
      expect(shown.at(-1)).toBe('new-primary@db1=ok');
    }
    expect(await state()).toEqual(before);
  }, 240_000);

  it('--limit for real: standby-from-backup on the healthy standby changes nothing; a switchover limited to the candidate is refused before it stops the primary', async () => {
    const pids = { db1: await lab.postmasterPid('db1'), db2: await lab.postmasterPid('db2') };
    const switchover = await lab.run('switchover.yml', ['-p', 'candidate=db2', '--limit', 'db2', '--yes']);
    expect(switchover.exitCode, switchover.stdout.slice(-4000) + switchover.stderr).toBe(2);
    const refusal = switchover.events.findLast((e) => e.type === 'run-end')!.error!.message;
    expect(refusal).toContain('--limit db2 leaves out what the steps that run need; nothing was changed');
    expect(refusal).toContain('it reads controldata, which step cutover/controldata registers on db1');
    expect(results(switchover.events)).toEqual([]);
    expect({ db1: await lab.postmasterPid('db1'), db2: await lab.postmasterPid('db2') }).toEqual(pids);
    const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--limit', 'db2']);
    expect(r.exitCode, r.stdout.slice(-4000) + r.stderr).toBe(0);
    const shown = results(r.events);
    // The guards read the upstream db1 (its facts, its replication role); nothing changed anywhere.
    expect(shown).toEqual(expect.arrayContaining(['target-not-read-write@db2=ok', 'upstream-running@db2=ok', 'build/receiver@db2=ok', 'build/stop@db2=skipped', 'build/start@db2=ok']));
    expect(shown.filter((s) => s.endsWith('=changed') || s.endsWith('=failed'))).toEqual([]);
    expect({ db1: await lab.postmasterPid('db1'), db2: await lab.postmasterPid('db2') }).toEqual(pids);
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
  }, 120_000);

  it('a fence that is a guard waits for the pre-flight: a later step that cannot render refuses the run with the standby still running', async () => {
    // A DBA's procedure whose first step fences db2 (a guard, so that --from and --resume cannot pass it by)
    // and whose later step has a typo. Before, guards ran ahead of the pre-flight: db2 was stopped, then the
    // run refused with "nothing was changed".
    const file = join(lab.dir, '..', 'fence-then-typo.yml');
    await writeFile(
      file,
      [
        'name: fence then a typo',
        'steps:',
        '  - id: fence',
        '    guard: true',
        '    hosts: db2',
        '    postgres: { state: stopped, mode: fast }',
        '  - id: note',
        '    hosts: db2',
        '    command: { argv: [logger, "{{ vars.restore_dri }}"] }',
        '',
      ].join('\n'),
    );
    const pid = await lab.postmasterPid('db2');
    expect(pid).toBeTruthy();
    const r = await lab.pgplay(['run', file, '--output', 'json', '--yes']);
    expect(r.exitCode, r.stdout.slice(-4000) + r.stderr).toBe(2);
    const evs = events(r.stdout);
    const end = evs.findLast((e) => e.type === 'run-end') as (JsonEvent & { error?: { code?: string; step?: string; message?: string } }) | undefined;
    expect(end?.error).toMatchObject({ code: 'RENDER', step: 'note' });
    expect(end?.error?.message).toContain('unknown variable "vars.restore_dri"');
    expect(results(evs)).toEqual([]);
    expect(await lab.postmasterPid('db2')).toBe(pid);
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
  }, 60_000);

  it('a real in-place restore passes the room guards and proves its target from the server log', async () => {
    const r = await lab.run('restore.yml', ['-p', 'host=db1', '-p', 'in_place=confirmed', '--yes']);
    expect(r.exitCode, r.stdout.slice(-4000) + r.stderr).toBe(0);
    const shown = results(r.events);
    expect(shown).toEqual(expect.arrayContaining(['room@db1=ok', 'room-free@db1=ok', 'room-enough@db1=ok', 'keep-aside@db1=changed', 'recover/log-mark@db1=ok', 'recover/proof@db1=ok', 'target-reached@db1=ok']));
    // The PGDATA was kept aside beside the restored one, the restored server is the primary, its data is back.
    expect((await readdir(join(lab.dir, 'db1'))).filter((n) => n.startsWith('data.pgplay-'))).toHaveLength(1);
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(Number(await lab.psql('db1', 'SELECT count(*) FROM accounts', 'app'))).toBeGreaterThan(0);
  }, 240_000);
});
