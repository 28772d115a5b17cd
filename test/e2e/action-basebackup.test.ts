/**
 * A streaming standby built by pgplay's own actions on real PostgreSQL 15, through the real engine:
 * pgpass (0600, password never shown) -> basebackup (pg_basebackup with a slot) -> recovery (settings
 * file + standby.signal, password-free primary_conninfo) -> template (the standby's port) -> postgres
 * started -> wait streaming. A second run changes nothing. Then the guards (running target, foreign
 * cluster, the inventory's primary), replace with confirmation, a real promotion to a new timeline and
 * the rebuild of the old primary from its successor.
 */
import { execa } from 'execa';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/engine/events.js';
import { runPlaybook } from '../../src/app/run-playbook.js';
import { pidAlive, readPostmasterPid, startCluster, stopAllClusters, type Cluster } from '../support/cluster.js';

type StepResult = Extract<RunEvent, { type: 'step-result' }>;

/** Needs .pgpass escaping (: and \) and SQL quoting ('), so every layer must get it right. */
const PASSWORD = "s3cr:et\\pw'x";
const ENV = { PGPLAY_TEST_REPL_PW: PASSWORD };

interface Run {
  exitCode: number;
  results: StepResult[];
  statuses: string[];
  events: RunEvent[];
}

async function run(dir: string, inventory: string, steps: string, opts: { yes?: boolean; check?: boolean } = {}): Promise<Run> {
  const playbook = join(dir, `playbook-${Math.random().toString(36).slice(2)}.yml`);
  await writeFile(playbook, `name: test\nsteps:\n${steps}`);
  const events: RunEvent[] = [];
  const outcome = await runPlaybook({
    playbookFile: playbook,
    inventoryFile: inventory,
    params: {},
    check: opts.check ?? false,
    diff: true,
    yes: opts.yes ?? false,
    timeout: '3m',
    env: ENV,
    onEvent: (e) => events.push(e),
  });
  const results = events.filter((e): e is StepResult => e.type === 'step-result');
  return {
    exitCode: outcome.exitCode,
    results,
    statuses: results.map((r) => `${r.step}=${r.status}${r.error ? ` (${r.error.code}: ${r.error.message})` : ''}`),
    events,
  };
}

let primary: Cluster;
let standby: Cluster;
let other: Cluster;
let dir: string;
let inventory: string;
let passfile: string;

function hostLine(name: string, role: string, c: Cluster, extra = ''): string {
  return `  ${name}: { address: 127.0.0.1, role: ${role}, pgdata: ${c.pgdata}${extra}, postgres: { port: ${c.port}, socketDir: ${c.socketDir} } }`;
}

async function writeInventory(path: string, hosts: string[]): Promise<string> {
  await writeFile(
    path,
    [
      'cluster: bb',
      'postgres:',
      '  version: 15',
      `  bindir: ${primary.bindir}`,
      'connection: { transport: local, become: postgres }',
      'replication: { user: replicator, password: { env: PGPLAY_TEST_REPL_PW }, slots: true }',
      'hosts:',
      ...hosts,
      '',
    ].join('\n'),
  );
  return path;
}

const STANDBY_BUILD = () => `  - id: pgpass
    hosts: db2
    pgpass: { path: ${passfile}, entries: [{ host: db1, database: replication }] }
  - id: copy
    hosts: db2
    basebackup: { from: db1 }
  - id: recovery
    hosts: db2
    recovery: { passfile: ${passfile} }
  - id: settings
    hosts: db2
    template: { src: postgresql.conf.hbs, dest: "{{host.pgdata}}/conf.d/pgplay.conf", mode: "0600" }
  - id: start
    hosts: db2
    postgres: { state: started }
  - id: streaming
    hosts: db1
    wait: { streaming: db2, timeout: 60s }
`;

beforeAll(async () => {
  primary = await startCluster({ port: 25510, auth: 'peer' });
  await primary.psql(`create role replicator with replication login password '${PASSWORD.replace(/'/g, "''")}'`);
  await primary.psql("create table t(i int primary key); insert into t values (1)");
  // Room for a standby: its own dir and socket dir; pg_basebackup creates its PGDATA.
  standby = await startCluster({ port: 25511, init: false, noStart: true });
  other = await startCluster({ port: 25512, auth: 'peer' });
  dir = primary.dir;
  passfile = join(standby.dir, 'pgpass');
  inventory = await writeInventory(join(dir, 'inventory.yml'), [
    hostLine('db1', 'primary', primary),
    hostLine('db2', 'standby', standby, ', upstream: db1'),
    hostLine('db3', 'standby', other, ', upstream: db1'),
  ]);
});

afterAll(async () => {
  await stopAllClusters();
});

const mode = async (p: string) => (await stat(p)).mode & 0o777;
const owner = async (p: string) => (await execa('stat', ['-c', '%U', p])).stdout;

describe('basebackup + recovery + pgpass + postgres build a streaming standby (PostgreSQL 15)', () => {
  it('plan shows every step and changes nothing', async () => {
    const plan = await run(dir, inventory, STANDBY_BUILD(), { check: true });
    expect(plan.exitCode).toBe(0);
    expect(plan.statuses).toEqual(['pgpass=changed', 'copy=changed', 'recovery=changed', 'settings=changed', 'start=changed', 'streaming=ok']);
    expect(plan.results[1]!.msg).toBe(`would copy db1 (127.0.0.1:25510) into ${standby.pgdata} with pg_basebackup`);
    await expect(stat(standby.pgdata)).rejects.toThrow();
    await expect(stat(passfile)).rejects.toThrow();
    expect(JSON.stringify(plan.events)).not.toContain('s3cr');
  });

  it('builds the standby; the primary sees it streaming through its slot; writes reach it', async () => {
    const first = await run(dir, inventory, STANDBY_BUILD());
    expect(first.statuses).toEqual(['pgpass=changed', 'copy=changed', 'recovery=changed', 'settings=changed', 'start=changed', 'streaming=ok']);
    expect(first.exitCode).toBe(0);

    expect(
      await primary.psql(
        "select r.application_name || '|' || r.state || '|' || s.slot_name from pg_stat_replication r join pg_replication_slots s on s.active_pid = r.pid",
      ),
    ).toBe('db2|streaming|pgplay_db2');
    expect(await standby.psql('select pg_is_in_recovery()')).toBe('t');
    await primary.psql('insert into t values (2)');
    await expect.poll(() => standby.psql("select string_agg(i::text, ',' order by i) from t"), { timeout: 15_000 }).toBe('1,2');

    // The files, their modes and owners, and what they say.
    const settings = join(standby.pgdata, 'conf.d', 'pgplay-recovery.conf');
    expect(await mode(settings)).toBe(0o600);
    expect(await owner(settings)).toBe('postgres');
    const lines = (await readFile(settings, 'utf8')).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines).toEqual([
      `primary_conninfo = 'host=127.0.0.1 port=25510 user=replicator application_name=db2 passfile=${passfile}'`,
      "primary_slot_name = 'pgplay_db2'",
    ]);
    expect(await mode(join(standby.pgdata, 'standby.signal'))).toBe(0o600);
    expect(await readFile(join(standby.pgdata, 'postgresql.conf'), 'utf8')).toMatch(/\ninclude_dir = 'conf.d'\n$/);
    expect(await mode(passfile)).toBe(0o600);
    expect(await owner(passfile)).toBe('postgres');
    expect(await readFile(passfile, 'utf8')).toBe("127.0.0.1:25510:replication:replicator:s3cr\\:et\\\\pw'x\n");

    // The password shows nowhere: not in the walreceiver's conninfo, not in any event (msg, diff, error).
    expect(await standby.psql('select conninfo from pg_stat_wal_receiver')).not.toContain('s3cr');
    const text = JSON.stringify(first.events);
    expect(text).not.toContain('s3cr');
    expect(text).not.toContain('pw\'x');
    expect(first.results[0]!.diff).toContain('+127.0.0.1:25510:replication:replicator:********');
    expect(first.results[2]!.msg).toBe('created conf.d/pgplay-recovery.conf, created standby.signal, updated postgresql.conf; a running server needs a restart');
    // No temporary passfile is left behind by pg_basebackup's run.
    const { stdout } = await execa('sh', ['-c', 'ls -d /tmp/pgplay-basebackup.* 2>/dev/null || true']);
    expect(stdout).toBe('');
  });

  it('a second run changes nothing', async () => {
    const pid = await readPostmasterPid(standby.pgdata);
    const second = await run(dir, inventory, STANDBY_BUILD());
    expect(second.statuses).toEqual(['pgpass=ok', 'copy=ok', 'recovery=ok', 'settings=ok', 'start=ok', 'streaming=ok']);
    expect(second.results[1]!.msg).toMatch(new RegExp(`^${standby.pgdata.replace(/\//g, '\\/')} already holds db1's cluster \\(system identifier \\d+\\)$`));
    expect(await readPostmasterPid(standby.pgdata)).toBe(pid);
  });
});

describe('recovery settings on a running PostgreSQL 15 standby', () => {
  it('a primary_conninfo change says "reload" (13+), and a reload is all the standby needs', async () => {
    const pid = await readPostmasterPid(standby.pgdata);
    const renamed = (name: string) => `  - id: recovery
    hosts: db2
    recovery: { passfile: ${passfile}, application_name: ${name} }
    notify: [reload]
handlers:
  reload: { hosts: db2, postgres: { state: reloaded } }
`;
    const steps = renamed('db2_renamed');
    const plan = await run(dir, inventory, steps, { check: true });
    expect(plan.statuses).toEqual(["recovery=changed", "reload=changed"]);
    expect(plan.results[0]!.msg).toBe('would update conf.d/pgplay-recovery.conf; a running server needs a reload');
    expect(plan.results[0]!.diff).toContain(
      `-primary_conninfo = 'host=127.0.0.1 port=25510 user=replicator application_name=db2 passfile=${passfile}'\n` +
        `+primary_conninfo = 'host=127.0.0.1 port=25510 user=replicator application_name=db2_renamed passfile=${passfile}'\n`,
    );

    const r = await run(dir, inventory, steps);
    expect(r.statuses).toEqual(['recovery=changed', 'reload=changed']);
    expect(r.results[0]!.msg).toBe('updated conf.d/pgplay-recovery.conf; a running server needs a reload');
    await expect
      .poll(() => primary.psql("select application_name || '|' || state from pg_stat_replication"), { timeout: 30_000 })
      .toBe('db2_renamed|streaming');
    // Same postmaster: the walreceiver reconnected with the new conninfo on reload alone.
    expect(await readPostmasterPid(standby.pgdata)).toBe(pid);
    // The previous file is kept beside it, where include_dir (which reads only *.conf) ignores it.
    expect(await readFile(join(standby.pgdata, 'conf.d', 'pgplay-recovery.conf.pgplay-prev'), 'utf8')).toContain('application_name=db2 ');

    const back = await run(dir, inventory, renamed('db2'));
    expect(back.statuses).toEqual(['recovery=changed', 'reload=changed']);
    const rebuilt = await run(dir, inventory, STANDBY_BUILD());
    expect(rebuilt.statuses).toEqual(['pgpass=ok', 'copy=ok', 'recovery=ok', 'settings=ok', 'start=ok', 'streaming=ok']);
  });
});

describe('basebackup guards (exit 3)', () => {
  it('refuses a running target, whatever the inventory calls it: db3 is a live primary of its own', async () => {
    const pid = await readPostmasterPid(other.pgdata);
    const r = await run(dir, inventory, '  - { id: copy, hosts: db3, basebackup: { from: db1, slot: false, replace: true } }\n', { yes: true });
    expect(r.exitCode).toBe(3);
    expect(r.results[0]!.error).toMatchObject({ code: 'GUARD', message: 'refusing to copy into db3: it is a running primary (not in recovery)' });
    expect(await readPostmasterPid(other.pgdata)).toBe(pid);
    expect(await other.psql('select 1')).toBe('1');
  });

  it('refuses a stopped foreign cluster; replace needs confirmation, then deletes and copies', async () => {
    await other.stop({ keep: true });
    const foreign = await other.psql('select 1').catch(() => 'stopped');
    expect(foreign).toBe('stopped');
    const sysid = (await execa(join(primary.bindir, 'pg_controldata'), ['-D', other.pgdata], { env: { LC_ALL: 'C' } })).stdout.match(
      /Database system identifier:\s+(\d+)/,
    )![1]!;
    const primarySysid = await primary.psql('select system_identifier from pg_control_system()');
    expect(sysid).not.toBe(primarySysid);

    const refused = await run(dir, inventory, '  - { id: copy, hosts: db3, basebackup: { from: db1, slot: false } }\n', { yes: true });
    expect(refused.exitCode).toBe(3);
    expect(refused.results[0]!.error).toMatchObject({
      code: 'GUARD',
      message: `refusing to copy db1 into ${other.pgdata} on db3: it holds another cluster (system identifier ${sysid}, PostgreSQL 15)`,
    });

    const unconfirmed = await run(dir, inventory, '  - { id: copy, hosts: db3, basebackup: { from: db1, slot: false, replace: true } }\n');
    expect(unconfirmed.exitCode).toBe(3);
    expect(unconfirmed.results[0]!.error?.message).toMatch(/^not confirmed: /);
    expect(await readFile(join(other.pgdata, 'PG_VERSION'), 'utf8')).toBe('15\n');
    const still = (await execa(join(primary.bindir, 'pg_controldata'), ['-D', other.pgdata], { env: { LC_ALL: 'C' } })).stdout;
    expect(still).toContain(sysid);

    const mountMode = await mode(other.pgdata);
    const replaced = await run(dir, inventory, '  - { id: copy, hosts: db3, basebackup: { from: db1, slot: false, replace: true } }\n', { yes: true });
    expect(replaced.statuses).toEqual(['copy=changed']);
    expect(replaced.results[0]!.msg).toMatch(new RegExp(`^copied db1 into ${other.pgdata.replace(/\//g, '\\/')} \\(old contents deleted\\) in \\d+\\.\\ds$`));
    const now = (await execa(join(primary.bindir, 'pg_controldata'), ['-D', other.pgdata], { env: { LC_ALL: 'C' } })).stdout;
    expect(now).toContain(primarySysid);
    expect(await mode(other.pgdata)).toBe(mountMode);
  });

  it('refuses to copy into the inventory\'s primary from a server that is not a primary', async () => {
    const empty = join(dir, 'empty-primary');
    await mkdir(empty, { mode: 0o700 });
    await execa('chown', ['postgres:postgres', empty]);
    const inv = await writeInventory(join(dir, 'inventory-p2.yml'), [
      `  p2: { address: 127.0.0.1, role: primary, pgdata: ${empty}, postgres: { port: 25513, socketDir: ${primary.socketDir} } }`,
      hostLine('db2', 'standby', standby, ', upstream: p2'),
    ]);
    const r = await run(dir, inv, '  - { id: copy, hosts: p2, basebackup: { from: db2, slot: false } }\n', { yes: true });
    expect(r.exitCode).toBe(3);
    expect(r.results[0]!.error).toMatchObject({
      code: 'GUARD',
      message: 'refusing to copy into p2: the inventory names it the primary, and db2 is not a running primary that replaced it',
    });
  });
});

describe('promotion of the standby and the rebuild of the old primary', () => {
  it('promotes db2 to a new timeline once db1 is fenced; promoting it again is refused', async () => {
    const before = await standby.psql('select timeline_id from pg_control_checkpoint()');
    expect(before).toBe('1');
    // The engine keeps one read-write server per cluster: not while db1 runs.
    const unfenced = await run(dir, inventory, '  - { id: promote, hosts: db2, postgres: { state: promoted } }\n', { yes: true });
    expect(unfenced.exitCode).toBe(3);
    expect(unfenced.results[0]!.error?.message).toContain('db1 runs read-write: promote would make db2 a second primary');
    expect(await standby.psql('select pg_is_in_recovery()')).toBe('t');
    const oldPid = await readPostmasterPid(primary.pgdata);
    const stop = await run(dir, inventory, '  - { id: fence, hosts: db1, postgres: { state: stopped, allow_primary: true } }\n', { yes: true });
    expect(stop.statuses).toEqual(['fence=changed']);
    await expect.poll(() => pidAlive(oldPid), { timeout: 10_000 }).toBe(false);

    const r = await run(dir, inventory, '  - { id: promote, hosts: db2, postgres: { state: promoted } }\n', { yes: true });
    expect(r.statuses).toEqual(['promote=changed']);
    expect(r.results[0]!.msg).toBe('promoted db2: timeline 1 -> 2');
    expect(await standby.psql('select pg_is_in_recovery()')).toBe('f');
    await standby.psql('insert into t values (3)');
    expect(await standby.psql("select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")).toBe('00000002');

    const again = await run(dir, inventory, '  - { id: promote, hosts: db2, postgres: { state: promoted } }\n', { yes: true });
    expect(again.exitCode).toBe(3);
    expect(again.results[0]!.error).toMatchObject({ code: 'GUARD', message: 'refusing to promote db2: it is not in recovery' });
  });

  it('rebuilds the stopped old primary from its successor (replace: its copy is no longer a standby)', async () => {
    const refused = await run(dir, inventory, '  - { id: copy, hosts: db1, basebackup: { from: db2, slot: false } }\n', { yes: true });
    expect(refused.exitCode).toBe(3);
    expect(refused.results[0]!.error?.message).toBe(
      `refusing to copy db2 into ${primary.pgdata} on db1: it holds a copy of db2's cluster that is not a standby (no standby.signal, recovery.signal, recovery.conf: a former primary?)`,
    );

    const rebuilt = await run(dir, inventory, '  - { id: copy, hosts: db1, basebackup: { from: db2, slot: false, replace: true } }\n', { yes: true });
    expect(rebuilt.statuses).toEqual(['copy=changed']);
    // The copy carries the new timeline's history: the rebuilt server can follow db2.
    await stat(join(primary.pgdata, 'backup_label'));
    const history = await execa('sh', ['-c', `ls ${primary.pgdata}/pg_wal | grep -c '^00000002.history$' || true`]);
    expect(history.stdout).toBe('1');
  });
});
