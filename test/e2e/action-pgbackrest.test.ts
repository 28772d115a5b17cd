/**
 * The pgbackrest action against real PostgreSQL 15 and real pgBackRest 2.45. Everything lives in one
 * temp dir (repository, log, lock and spool paths, a pgbackrest.conf passed with --config), so nothing
 * touches /etc or /var. Ports 25601-25602.
 *
 * The tests run in order and build on each other: stanza, backups, expire, restores, guards, stop/start,
 * and last verify, which damages the repository on purpose.
 */
import { execa } from 'execa';
import { chown, mkdir, mkdtemp, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgbackrestAction } from '../../src/actions/pgbackrest.js';
import type { ActionContext, Outcome } from '../../src/actions/types.js';
import { PgplayError } from '../../src/core/errors.js';
import { validateRenderedInput } from '../../src/engine/input.js';
import type { HostFacts } from '../../src/model/facts.js';
import type { Host, Inventory } from '../../src/model/inventory.js';
import { factsArgv, parseFacts } from '../../src/postgres/facts.js';
import { LocalTransport } from '../../src/transports/local.js';
import type { ExecOptions, Transport } from '../../src/transports/types.js';
import { hostForCluster, PG_OS_USER, startCluster, stopAllClusters, type Cluster } from '../support/cluster.js';
import { testContext } from '../unit/support/action-context.js';

const STANZA = 'e2e';
const LONELY = 'lonely';
const PRIMARY_PORT = 25601;
const DRILL_PORT = 25602;

let tmp: string;
let conf: string;
let repo: string;
let primary: Cluster;
let drill: Cluster | undefined;
let db1: Host;
let drill1: Host;

/** Every command the action ran, with its stdin, to prove what never reaches an argv. */
const executed: { argv: string[]; stdin?: string }[] = [];

class RecordingTransport implements Transport {
  readonly kind = 'local' as const;
  constructor(private readonly inner: LocalTransport) {}
  get hostName() {
    return this.inner.hostName;
  }
  connect() {
    return this.inner.connect();
  }
  exec(argv: string[], options?: ExecOptions) {
    executed.push({ argv, stdin: typeof options?.stdin === 'string' ? options.stdin : undefined });
    return this.inner.exec(argv, options);
  }
  readFile(...a: Parameters<Transport['readFile']>) {
    return this.inner.readFile(...a);
  }
  writeFile(...a: Parameters<Transport['writeFile']>) {
    return this.inner.writeFile(...a);
  }
  stat(...a: Parameters<Transport['stat']>) {
    return this.inner.stat(...a);
  }
  openStream(...a: Parameters<Transport['openStream']>) {
    return this.inner.openStream(...a);
  }
  close() {
    return this.inner.close();
  }
}

const inventory = (extra: Partial<Inventory> = {}): Inventory => ({
  cluster: 'main',
  postgres: { version: 15 },
  backup: { tool: 'pgbackrest', stanza: STANZA },
  hosts: {},
  ...extra,
});

async function gatherFacts(host: Host): Promise<HostFacts> {
  const t = new LocalTransport(host);
  const r = await t.exec(factsArgv(host), { become: PG_OS_USER });
  return parseFacts(r.stdout);
}

async function context(host: Host, opts: { checkMode?: boolean; inventory?: Inventory; secrets?: Record<string, string>; yes?: boolean } = {}): Promise<ActionContext & { logs: string[] }> {
  const facts = await gatherFacts(host);
  const base = testContext({ host, facts, checkMode: opts.checkMode, transport: new RecordingTransport(new LocalTransport(host)) });
  const inv = opts.inventory ?? inventory();
  return {
    ...base,
    // As the engine under --yes: check's reads reach apply, and no human is asked in between.
    ...(opts.yes ? { checkReads: new Map<string, unknown>(), assumeYes: true } : {}),
    inventory: inv,
    async secret(ref) {
      const name = (ref as { env: string }).env;
      const value = opts.secrets?.[name];
      base.redactor.add(value);
      return value;
    },
  };
}

/** What the engine does for one step on one host: validate, check, and apply only when check says changed. */
async function step(host: Host, raw: Record<string, unknown>, opts: Parameters<typeof context>[1] = {}): Promise<Outcome & { planned: Outcome }> {
  const ctx = await context(host, opts);
  const input = validateRenderedInput(pgbackrestAction, raw) as never;
  const planned = await pgbackrestAction.check(ctx, input);
  if (ctx.checkMode || !planned.changed) return { ...planned, planned };
  const outcome = await pgbackrestAction.apply(ctx, input, planned);
  return { ...outcome, planned };
}

async function failure(p: Promise<unknown>): Promise<PgplayError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PgplayError) return e;
    throw e;
  }
  throw new Error('expected the step to fail');
}

async function info(): Promise<{ label: string; type: string }[]> {
  const r = await step(db1, { command: 'info' });
  return (r.data!.backups as { label: string; type: string }[]).map((b) => ({ label: b.label, type: b.type }));
}

/** Switches WAL and waits until the finished segment is in the repository. */
async function archiveCurrentWal(): Promise<string> {
  const segment = await primary.psql('select pg_walfile_name(pg_switch_wal())');
  await expect
    .poll(async () => (await primary.psql('select coalesce(last_archived_wal, \'\') from pg_stat_archiver')) >= segment, { timeout: 60_000, interval: 200 })
    .toBe(true);
  return segment;
}

async function runAsPostgres(argv: string[]) {
  return execa('runuser', ['-u', PG_OS_USER, '--', ...argv], { reject: false, cwd: '/', env: { LC_ALL: 'C' } });
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pgplay-pgbr-'));
  repo = join(tmp, 'repo');
  for (const d of ['repo', 'log', 'lock', 'spool', 'pg1', 'pg2']) await mkdir(join(tmp, d));
  conf = join(tmp, 'pgbackrest.conf');
  const pg1 = join(tmp, 'pg1');
  await writeFile(
    conf,
    [
      '[global]',
      `repo1-path=${repo}`,
      'repo1-retention-full=2',
      `log-path=${join(tmp, 'log')}`,
      `lock-path=${join(tmp, 'lock')}`,
      `spool-path=${join(tmp, 'spool')}`,
      'start-fast=y',
      'archive-timeout=30',
      '',
      `[${STANZA}]`,
      `pg1-path=${join(pg1, 'data')}`,
      `pg1-port=${PRIMARY_PORT}`,
      `pg1-socket-path=${join(pg1, 'sock')}`,
      '',
      // The same cluster under a stanza its archive_command never pushes to.
      `[${LONELY}]`,
      `pg1-path=${join(pg1, 'data')}`,
      `pg1-port=${PRIMARY_PORT}`,
      `pg1-socket-path=${join(pg1, 'sock')}`,
      '',
    ].join('\n'),
  );
  await execa('chown', ['-R', `${PG_OS_USER}:${PG_OS_USER}`, tmp]);
  await execa('chmod', ['755', tmp]);
  primary = await startCluster({
    dir: pg1,
    port: PRIMARY_PORT,
    settings: {
      wal_level: 'replica',
      archive_mode: 'on',
      archive_command: `pgbackrest --config=${conf} --stanza=${STANZA} archive-push %p`,
    },
  });
  db1 = { ...hostForCluster(primary, { name: 'db1', role: 'primary' }), vars: { pgbackrest_config: conf } };
  const pg2 = join(tmp, 'pg2');
  drill1 = {
    ...hostForCluster({ pgdata: join(pg2, 'data'), port: DRILL_PORT, socketDir: join(pg2, 'sock'), bindir: primary.bindir }, { name: 'drill1', role: 'drill' }),
    vars: { pgbackrest_config: conf },
  };
});

afterAll(async () => {
  await stopAllClusters();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('pgbackrest action on PostgreSQL 15 with pgBackRest 2.45', () => {
  it('stanza-create: plans a creation, creates, then is ok; stanza and config come from the inventory and host vars', async () => {
    const before = await step(db1, { command: 'info' });
    expect(before.changed).toBe(false);
    expect(before.data).toMatchObject({ stanza: STANZA, exists: false, status: { code: 1, message: 'missing stanza path' } });

    const plan = await step(db1, { command: 'stanza-create' }, { checkMode: true });
    expect(plan).toMatchObject({ changed: true, msg: `would create stanza ${STANZA} (info: missing stanza path)` });

    const first = await step(db1, { command: 'stanza-create' });
    expect(first.changed).toBe(true);
    expect(first.msg).toBe(`created stanza ${STANZA}`);
    const sysid = await primary.psql('select system_identifier from pg_control_system()');
    expect(first.data).toMatchObject({ exists: true, system_id: sysid, pg_version: '15', status: { code: 2, message: 'no valid backups' } });

    const second = await step(db1, { command: 'stanza-create' });
    expect(second.changed).toBe(false);
    expect(second.msg).toBe(`stanza ${STANZA} exists (no valid backups)`);
    // Every command ran with the config from host vars and the stanza from inventory backup.stanza.
    const runs = executed.filter((e) => e.argv[0] === 'pgbackrest');
    expect(runs.length).toBeGreaterThan(3);
    for (const r of runs) expect(r.argv.slice(0, 3)).toEqual(['pgbackrest', `--config=${conf}`, `--stanza=${STANZA}`]);
  });

  it('check: passes on a configured primary; under --check it does not run (it would switch WAL)', async () => {
    const r = await step(db1, { command: 'check' });
    expect(r.changed).toBe(false);
    expect(r.msg).toMatch(new RegExp(`^pgbackrest check passed for stanza ${STANZA}: WAL segment [0-9A-F]{24} reached the repository$`));
    const plan = await step(db1, { command: 'check' }, { checkMode: true });
    expect(plan).toMatchObject({ changed: false, skipped: true });
  });

  it('check: a wrong stanza is a failure with pgBackRest\'s message', async () => {
    const e = await failure(step(db1, { command: 'check', stanza: 'nosuch' }));
    expect(e.code).toBe('STEP_FAILED');
    expect(e.message).toBe('pgbackrest check failed with error 37 (a required option is missing): check command requires option: pg1-path');
    expect(e.hint).toBe(`is stanza nosuch defined in ${conf}?; does this stanza exist?`);
  });

  it('check: WAL that never reaches the stanza is error 82 with the archive_command hint', async () => {
    expect((await step(db1, { command: 'stanza-create', stanza: LONELY })).changed).toBe(true);
    const e = await failure(step(db1, { command: 'check', stanza: LONELY, options: { 'archive-timeout': 2 } }));
    expect(e.code).toBe('STEP_FAILED');
    expect(e.message).toMatch(
      /^pgbackrest check failed with error 82 \(WAL did not reach the repository before the archive timeout\): WAL segment [0-9A-F]{24} was not archived before the 2000ms timeout$/,
    );
    expect(e.hint!.startsWith(`check archive_command (it must run pgbackrest --config=${conf} --stanza=${LONELY} archive-push %p)`)).toBe(true);
  });

  let fullLabel: string;

  it('backup: incr without a prior full becomes a full, and the action says so', async () => {
    const plan = await step(db1, { command: 'backup', type: 'incr' }, { checkMode: true });
    expect(plan.msg).toBe('would take a full backup (incr requested, but no prior full backup exists)');

    const r = await step(db1, { command: 'backup', type: 'incr' });
    expect(r.changed).toBe(true);
    expect(r.data).toMatchObject({ type: 'full', requested_type: 'incr', type_changed: true, type_change_reason: 'no prior backup exists', prior: null });
    fullLabel = r.data!.label as string;
    expect(fullLabel).toMatch(/^\d{8}-\d{6}F$/);
    expect(r.data!.lsn_start).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(r.data!.size).toBeGreaterThan(1_000_000);
    expect(Date.parse(r.data!.stop_time as string)).toBeGreaterThan(Date.now() - 120_000);
    expect(r.msg).toContain(`took a full backup ${fullLabel}`);
    expect(r.msg).toContain('incr requested, pgBackRest took a full backup: no prior backup exists');
    expect(await info()).toEqual([{ label: fullLabel, type: 'full' }]);
  });

  it('backup: an incr after the full; info shows both with the right types', async () => {
    await primary.psql('create table marker(v text); insert into marker values (\'after-full\')');
    const plan = await step(db1, { command: 'backup', type: 'incr' }, { checkMode: true });
    expect(plan.msg).toBe('would take a incr backup');
    const r = await step(db1, { command: 'backup', type: 'incr' });
    expect(r.data).toMatchObject({ type: 'incr', requested_type: 'incr', type_changed: false, prior: fullLabel, reference: [fullLabel] });
    expect(r.data!.label).toMatch(new RegExp(`^${fullLabel}_\\d{8}-\\d{6}I$`));
    expect(await info()).toEqual([
      { label: fullLabel, type: 'full' },
      { label: r.data!.label, type: 'incr' },
    ]);
  });

  it('expire: with retention full=1, a new full expires the old full and its incr; then nothing to expire', async () => {
    const second = await step(db1, { command: 'backup', type: 'full' });
    const newFull = second.data!.label as string;
    // repo1-retention-full=2 in the config: the automatic expire after the backup removed nothing.
    expect(second.data!.expired).toEqual([]);
    const before = await info();
    expect(before.map((b) => b.type)).toEqual(['full', 'incr', 'full']);

    const plan = await step(db1, { command: 'expire', options: { 'repo1-retention-full': 1 } }, { checkMode: true });
    expect(plan.changed).toBe(true);
    expect(plan.data!.removed_backups).toEqual([before[1]!.label, fullLabel]);
    expect(await info()).toEqual(before);

    const r = await step(db1, { command: 'expire', options: { 'repo1-retention-full': 1 } });
    expect(r.changed).toBe(true);
    expect([...(r.data!.removed_backups as string[])].sort()).toEqual([fullLabel, before[1]!.label].sort());
    expect(r.data!.backups).toEqual([newFull]);
    expect(r.data!.archive_min).not.toBe(r.data!.archive_min_before);
    expect(await info()).toEqual([{ label: newFull, type: 'full' }]);

    const again = await step(db1, { command: 'expire', options: { 'repo1-retention-full': 1 } });
    expect(again).toMatchObject({ changed: false, msg: `nothing to expire in stanza ${STANZA}` });
  });

  it('restore: a non-empty directory is refused (with delta too when it is no PGDATA); into an empty one the copy starts with the data', async () => {
    await primary.psql("insert into marker values ('archived-after-backup')");
    await archiveCurrentWal();
    await mkdir(drill1.pgdata!, { recursive: true, mode: 0o700 });
    await writeFile(join(drill1.pgdata!, 'leftover'), 'x');
    await execa('chown', ['-R', `${PG_OS_USER}:${PG_OS_USER}`, join(tmp, 'pg2')]);

    const refused = await failure(step(drill1, { command: 'restore', archive_mode: 'off' }));
    expect(refused.code).toBe('GUARD');
    expect(refused.exitCode).toBe(3);
    expect(refused.message).toBe(`refusing to restore over drill1: ${drill1.pgdata} is not empty`);
    expect(refused.hint).toContain('delta: true');

    const plan = await step(drill1, { command: 'restore', archive_mode: 'off' }, { checkMode: true });
    expect(plan.changed).toBe(true);
    expect(plan.msg).toContain('is not empty: delta: true is needed unless an earlier step empties it');

    const notPgdata = await failure(step(drill1, { command: 'restore', delta: true, archive_mode: 'off' }));
    expect(notPgdata.code).toBe('GUARD');
    expect(notPgdata.message).toBe(
      `refusing to restore over drill1: ${drill1.pgdata} is not empty and holds no PG_VERSION, so pgBackRest would not restore over it even with delta`,
    );

    await unlink(join(drill1.pgdata!, 'leftover'));
    const latest = (await info()).at(-1)!.label;
    const r = await step(drill1, { command: 'restore', delta: true, archive_mode: 'off' });
    expect(r.changed).toBe(true);
    expect(r.data).toMatchObject({ set: latest, backup_type: 'full', type: 'default', delta: true, pgdata: drill1.pgdata, pgdata_before: 'empty', archive_mode: 'off' });
    expect(r.msg).toContain(`restored full backup ${latest}`);

    drill = await startCluster({ dir: join(tmp, 'pg2'), pgdata: drill1.pgdata, port: DRILL_PORT, init: false, noStart: true });
    await drill.start();
    await expect.poll(() => drill!.psql('select pg_is_in_recovery()'), { timeout: 60_000 }).toBe('f');
    expect(await drill.psql("select string_agg(v, ',' order by v) from marker")).toBe('after-full,archived-after-backup');
    expect(await drill.psql('show archive_mode')).toBe('off');
  });

  it('restore guards: never over a running cluster, never over the primary without allow_primary', async () => {
    const running = await failure(step(drill1, { command: 'restore', delta: true }));
    expect(running.code).toBe('GUARD');
    expect(running.message).toBe(
      `refusing to restore over drill1: PostgreSQL is running in ${drill1.pgdata} (pid ${drill!.pid}) as a primary (not in recovery); never restore over a running cluster`,
    );
    expect(running.hint).toBe('stop it first (postgres: {state: stopped})');

    // Under --check a running target is a note: an earlier step of the playbook may stop it.
    const plan = await step(drill1, { command: 'restore', delta: true }, { checkMode: true });
    expect(plan.msg).toContain(`PostgreSQL is running in ${drill1.pgdata} (pid ${drill!.pid}) as a primary (not in recovery): it must be stopped before the restore runs`);

    const primaryRole = await failure(step(db1, { command: 'restore', delta: true }));
    expect(primaryRole.code).toBe('GUARD');
    expect(primaryRole.message).toBe(`refusing to restore over db1: it is the inventory's primary, and a restore replaces its PGDATA ${db1.pgdata}`);
    expect(primaryRole.hint).toContain('allow_primary: true');
    // The inventory guard refuses in plan too.
    await expect(step(db1, { command: 'restore', delta: true }, { checkMode: true })).rejects.toMatchObject({ code: 'GUARD' });

    const allowed = await failure(step(db1, { command: 'restore', delta: true, allow_primary: true }));
    expect(allowed.code).toBe('GUARD');
    expect(allowed.message).toContain(`PostgreSQL is running in ${db1.pgdata} (pid ${primary.pid}) as a primary (not in recovery); never restore over a running cluster`);
    // Nothing reached pgBackRest: the primary is untouched.
    expect(await primary.psql('select count(*) from marker')).toBe('2');
  });

  it('restore: PITR to a restore point brings back a table dropped after it', async () => {
    await primary.psql("create table important(v text); insert into important values ('keep me')");
    await primary.psql("select pg_create_restore_point('pgplay_before_drop')");
    await primary.psql('drop table important');
    await archiveCurrentWal();
    await drill!.stop({ keep: true });

    const bad = await failure(step(drill1, { command: 'restore', type: 'name', delta: true }));
    expect(bad).toMatchObject({ code: 'SEMANTIC', message: 'restore type name needs a target' });

    const r = await step(drill1, {
      command: 'restore',
      type: 'name',
      target: 'pgplay_before_drop',
      target_action: 'promote',
      delta: true,
      archive_mode: 'off',
    });
    expect(r.data).toMatchObject({ type: 'name', target: 'pgplay_before_drop', target_action: 'promote', targeted: true, pgdata_before: 'nonempty' });
    const auto = await import('node:fs/promises').then((fs) => fs.readFile(join(drill1.pgdata!, 'postgresql.auto.conf'), 'utf8'));
    expect(auto).toContain("recovery_target_name = 'pgplay_before_drop'");
    expect(auto).toContain(`restore_command = 'pgbackrest --config=${conf} --pg1-path=${drill1.pgdata} --stanza=${STANZA} archive-get %f "%p"'`);

    await drill!.start();
    await expect.poll(() => drill!.psql('select pg_is_in_recovery()'), { timeout: 60_000 }).toBe('f');
    expect(await drill!.psql('select v from important')).toBe('keep me');
    expect(await drill!.log()).toContain('recovery stopping at restore point "pgplay_before_drop"');
    // The primary still has no such table.
    await expect(primary.psql('select v from important')).rejects.toThrow(/does not exist/);
    await drill!.stop({ keep: true });
  });

  it('restore: refuses standby_mode on 12+, a password in a recovery option, and an unknown backup set', async () => {
    await expect(step(drill1, { command: 'restore', delta: true, recovery_options: { standby_mode: 'on' } })).rejects.toMatchObject({
      code: 'SEMANTIC',
      message: 'recovery option standby_mode does not exist on PostgreSQL 15: the server refuses to start with it',
      expected: 'type: standby (pgBackRest then writes standby.signal)',
    });
    await expect(
      step(drill1, { command: 'restore', delta: true, recovery_options: { primary_conninfo: 'host=x user=r password=hunter2' } }),
    ).rejects.toMatchObject({ code: 'SEMANTIC', message: 'recovery option primary_conninfo contains a password' });
    const e = await failure(step(drill1, { command: 'restore', delta: true, set: '20000101-000000F' }));
    expect(e.code).toBe('STEP_FAILED');
    expect(e.message).toBe(`backup set 20000101-000000F does not exist in stanza ${STANZA}`);
    expect(e.expected).toBe(`one of ${(await info()).map((b) => b.label).join(', ')}`);
    // Under --yes, into a directory that holds no cluster (the guards ask the repository nothing), the restore
    // does not wait for info: pgBackRest itself refuses the set before it writes anything there, and the
    // step says what check said above.
    const fresh = join(tmp, 'pg-fresh');
    await mkdir(fresh, { mode: 0o700 });
    await execa('chown', [`${PG_OS_USER}:${PG_OS_USER}`, fresh]);
    const fast = await failure(step({ ...drill1, pgdata: fresh }, { command: 'restore', set: '20000101-000000F' }, { yes: true }));
    expect({ code: fast.code, message: fast.message, expected: fast.expected }).toEqual({ code: e.code, message: e.message, expected: e.expected });
    expect(await readdir(fresh)).toEqual([]);
  });

  it('stop: a backup then fails with error 62 and the hint; stop again is ok; start makes it work again', async () => {
    const stopFile = join(tmp, 'lock', `${STANZA}.stop`);
    const plan = await step(db1, { command: 'stop' }, { checkMode: true });
    expect(plan).toMatchObject({ changed: true, msg: `would stop pgBackRest for stanza ${STANZA} (creates ${stopFile})` });
    const stop = await step(db1, { command: 'stop' });
    expect(stop).toMatchObject({ changed: true, data: { stop_file: stopFile, stopped: true } });
    expect((await step(db1, { command: 'stop' })).changed).toBe(false);

    const e = await failure(step(db1, { command: 'backup', type: 'incr' }));
    expect(e.code).toBe('STEP_FAILED');
    expect(e.message).toBe(`pgbackrest backup failed with error 62 (pgBackRest is stopped (a stop file exists)): stop file exists for stanza ${STANZA}`);
    expect(e.hint).toContain('`pgbackrest start`');

    const start = await step(db1, { command: 'start' });
    expect(start).toMatchObject({ changed: true, data: { stopped: false } });
    expect((await step(db1, { command: 'start' })).changed).toBe(false);
    const r = await step(db1, { command: 'backup', type: 'incr' });
    expect(r.data!.type).toBe('incr');
  });

  it('stop all: a stanza start cannot lift a global stop', async () => {
    expect((await step(db1, { command: 'stop', all: true })).changed).toBe(true);
    const e = await failure(step(db1, { command: 'start' }));
    expect(e.message).toBe(`pgBackRest is stopped for all stanzas (${join(tmp, 'lock', 'all.stop')}); starting stanza ${STANZA} alone does not lift that`);
    expect((await step(db1, { command: 'start', all: true })).changed).toBe(true);
    expect((await step(db1, { command: 'start', all: true })).changed).toBe(false);
  });

  it('verify: passes a healthy repository, fails a WAL gap and a damaged backup although pgBackRest exits 0', async () => {
    const ok = await step(db1, { command: 'verify' });
    expect(ok.changed).toBe(false);
    expect(ok.data).toMatchObject({ status: 'ok', problems: [] });
    expect(ok.data!.backups_checked).toBe((await info()).length);
    expect(ok.msg).toMatch(/^verify passed: \d+ backups \(\d+ files\) and \d+ WAL segments valid$/);

    // A WAL segment missing from the middle of the archive.
    const walDir = join(repo, 'archive', STANZA, '15-1', '0000000100000000');
    const segments = (await readdir(walDir)).filter((f) => /^[0-9A-F]{24}-[0-9a-f]{40}\.gz$/.test(f)).sort();
    expect(segments.length).toBeGreaterThanOrEqual(3);
    const victim = segments[Math.floor(segments.length / 2)]!;
    await rename(join(walDir, victim), join(tmp, victim));
    const direct = await runAsPostgres(['pgbackrest', `--config=${conf}`, `--stanza=${STANZA}`, 'verify']);
    expect(direct.exitCode).toBe(0);
    const gap = await failure(step(db1, { command: 'verify' }));
    expect(gap.code).toBe('STEP_FAILED');
    const before = segments[segments.indexOf(victim) - 1]!.slice(0, 24);
    const after = segments[segments.indexOf(victim) + 1]!.slice(0, 24);
    expect(gap.message).toContain(`(it exits 0 regardless): WAL archive 15-1: segments missing between ${before} and ${after} (timeline 00000001)`);
    await rename(join(tmp, victim), join(walDir, victim));
    expect((await step(db1, { command: 'verify' })).data!.status).toBe('ok');

    // A file deleted from the newest backup.
    const latest = (await info()).filter((b) => b.type === 'full').at(-1)!.label;
    await unlink(join(repo, 'backup', STANZA, latest, 'pg_data', 'PG_VERSION.gz'));
    expect((await runAsPostgres(['pgbackrest', `--config=${conf}`, `--stanza=${STANZA}`, 'verify'])).exitCode).toBe(0);
    const damaged = await failure(step(db1, { command: 'verify' }));
    expect(damaged.code).toBe('STEP_FAILED');
    expect(damaged.message).toMatch(new RegExp(`^pgbackrest verify found \\d+ problems? in stanza ${STANZA} \\(it exits 0 regardless\\): `));
    expect(damaged.message).toContain(`stanza ${STANZA}: backup ${latest} is invalid (1 missing of`);
    expect(damaged.message).toContain(`file missing '${latest}/pg_data/PG_VERSION.gz'`);
  });
});

describe('pgbackrest action with an encrypted repository', () => {
  const PASS = 'pgplay-Secret-Cipher-9f3b';

  it('hands the passphrase over stdin only: stanza-create and info work, no argv ever holds it', async () => {
    const encConf = join(tmp, 'pgbackrest-enc.conf');
    await mkdir(join(tmp, 'repo-enc'));
    await writeFile(
      encConf,
      [
        '[global]',
        `repo1-path=${join(tmp, 'repo-enc')}`,
        'repo1-cipher-type=aes-256-cbc',
        `log-path=${join(tmp, 'log')}`,
        `lock-path=${join(tmp, 'lock')}`,
        '',
        '[enc]',
        `pg1-path=${primary.pgdata}`,
        `pg1-port=${PRIMARY_PORT}`,
        `pg1-socket-path=${primary.socketDir}`,
        '',
      ].join('\n'),
    );
    await chown(encConf, ...(await ids()));
    await execa('chown', ['-R', `${PG_OS_USER}:${PG_OS_USER}`, join(tmp, 'repo-enc')]);
    const inv = inventory({ backup: { tool: 'pgbackrest', stanza: 'enc', cipherPass: { env: 'PGPLAY_TEST_CIPHER' } } });
    const opts = { inventory: inv, secrets: { PGPLAY_TEST_CIPHER: PASS } };
    executed.length = 0;

    const created = await step(db1, { command: 'stanza-create', config: encConf }, opts);
    expect(created.changed).toBe(true);
    const r = await step(db1, { command: 'info', config: encConf }, opts);
    expect(r.data).toMatchObject({ stanza: 'enc', exists: true, cipher: 'aes-256-cbc' });

    // Without the passphrase pgBackRest cannot even read the stanza.
    const without = await failure(step(db1, { command: 'info', config: encConf }, { inventory: inventory({ backup: { tool: 'pgbackrest', stanza: 'enc' } }) }));
    expect(without.code).toBe('STEP_FAILED');
    expect(without.message).toMatch(/^pgbackrest info failed with error \d+/);

    const pgbr = executed.filter((e) => e.argv.includes('pgbackrest'));
    expect(pgbr.length).toBeGreaterThanOrEqual(4);
    for (const e of executed) expect(e.argv.join(' ')).not.toContain(PASS);
    expect(pgbr.filter((e) => e.stdin === `${PASS}\n`).length).toBeGreaterThanOrEqual(3);
    for (const o of [created, r]) expect(JSON.stringify(o)).not.toContain(PASS);
  });
});

async function ids(): Promise<[number, number]> {
  const uid = Number((await execa('id', ['-u', PG_OS_USER])).stdout.trim());
  const gid = Number((await execa('id', ['-g', PG_OS_USER])).stdout.trim());
  return [uid, gid];
}
