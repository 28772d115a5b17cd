/**
 * On the rig of separate machines (127.0.46.x, this file's subnet), with an inventory that says only
 * `layout: debian`:
 *
 * - Service manager pg_ctlcluster (issue 11 item 3): pgplay stops, starts, restarts and reloads alpha's
 *   PostgreSQL through pg_ctlcluster, and after each `pg_lsclusters` inside the machine tells the truth,
 *   the server writes to /var/log/postgresql/postgresql-15-main.log and Debian's external pid file is there.
 * - Waits that explain themselves (issue 11 item 7): a standby killed during a wait fails the wait at
 *   the watch's next read (within about a second) with its log; a standby whose replication role does not
 *   exist on the upstream fails a 5 minute streaming wait as soon as its log repeats the FATAL, naming the role.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_DIR, PGDATA, PG_CLUSTER, PG_VERSION, startMachines, type Machine, type Machines } from '../support/machines.js';
import { finished, jsonEvents, pgplay, spawnPgplay, writeRigInventory } from './fixtures/ssh/support.js';

const SUBNET = '127.0.46';
const LOG = `/var/log/postgresql/postgresql-${PG_VERSION}-${PG_CLUSTER}.log`;

describe('layout debian on separate machines: pg_ctlcluster and waits that explain themselves', () => {
  let rig: Machines;
  let alpha: Machine;
  let bravo: Machine;
  let work: string;
  let inventory: string;

  async function sh(m: Machine, script: string, user = 'postgres'): Promise<string> {
    const r = await m.exec(['sh', '-c', script], { user });
    expect(r.exitCode, `${m.name}: ${script}\n${r.stderr}`).toBe(0);
    return r.stdout.trim();
  }

  /** pg_lsclusters' line for 15/main inside the machine: status and data directory. */
  async function lsclusters(m: Machine): Promise<{ status: string; pgdata: string; log: string }> {
    const [, , , status, , pgdata, log] = (await sh(m, `pg_lsclusters -h | awk '$1 == ${PG_VERSION} && $2 == "${PG_CLUSTER}"'`)).split(/\s+/);
    return { status: status!, pgdata: pgdata!, log: log! };
  }

  const logSize = async (m: Machine) => Number(await sh(m, `stat -c %s ${LOG}`));
  const logAfter = (m: Machine, size: number) => sh(m, `tail -c +${size + 1} ${LOG}`);

  async function run(name: string, yaml: string, extra: string[] = []) {
    const file = join(work, `${name}.yml`);
    await writeFile(file, yaml);
    return pgplay(['run', file, '-i', inventory, '--output', 'json', ...extra], join(work, 'state'));
  }

  /** The pids of the postgres processes left in bravo's namespace (or a pid that is gone when none are). */
  async function bravoChildren(): Promise<string> {
    const pids = (await bravo.pids()).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'postgres';
      } catch {
        return false;
      }
    });
    return pids.length ? pids.join(' ') : '999999999';
  }

  const failure = (stdout: string) => jsonEvents(stdout).find((e) => e.type === 'step-result' && e.status === 'failed')?.error?.message ?? '';

  beforeAll(async () => {
    rig = await startMachines([
      { name: 'alpha', address: `${SUBNET}.1` },
      { name: 'bravo', address: `${SUBNET}.2` },
    ]);
    alpha = rig.machines.alpha!;
    bravo = rig.machines.bravo!;
    work = await mkdtemp(join(tmpdir(), 'pgplay-service-debian-'));
    inventory = await writeRigInventory(join(work, 'inventory.yml'), rig, { cluster: 'svc', hosts: { alpha: 'role: primary', bravo: 'role: standby, upstream: alpha' } });
    // bravo becomes alpha's standby by hand, streaming as postgres.
    // Connections between machines leave from 127.0.0.1 (the loopback's source address): trust it first.
    await sh(alpha, `sed -i '1i host replication all 127.0.0.1/32 trust\\nhost all all 127.0.0.1/32 trust' ${CONFIG_DIR}/pg_hba.conf && pg_ctlcluster ${PG_VERSION} ${PG_CLUSTER} reload`);
    await sh(bravo, `pg_ctlcluster ${PG_VERSION} ${PG_CLUSTER} stop && rm -rf ${PGDATA} && pg_basebackup -h ${alpha.address} -U postgres -D ${PGDATA} -R -c fast -X stream`);
    await sh(bravo, `echo "primary_conninfo = 'host=${alpha.address} port=5432 user=postgres application_name=bravo'" >> ${PGDATA}/postgresql.auto.conf`);
    await sh(bravo, `pg_ctlcluster ${PG_VERSION} ${PG_CLUSTER} start`);
  }, 600_000);

  afterAll(async () => {
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('stop, start, restart and reload go through pg_ctlcluster; pg_lsclusters and the Debian log tell the truth', async () => {
    const one = (state: string) => `name: ${state}\nsteps:\n  - id: ${state}\n    hosts: alpha\n    postgres: { state: ${state}${state === 'stopped' ? ', allow_primary: true' : ''} }\n`;

    const stop = await run('stop', one('stopped'), ['--yes']);
    expect(stop.exitCode, stop.stdout + stop.stderr).toBe(0);
    expect(await lsclusters(alpha)).toEqual({ status: 'down', pgdata: PGDATA, log: LOG });
    expect(await alpha.postmasterPid()).toBeUndefined();

    let mark = await logSize(alpha);
    const start = await run('start', one('started'));
    expect(start.exitCode, start.stdout + start.stderr).toBe(0);
    expect((await lsclusters(alpha)).status).toBe('online');
    const pid = await alpha.postmasterPid();
    // pg_ctlcluster's own marks: its external pid file, and the server's output in Debian's log.
    expect(await sh(alpha, `cat /var/run/postgresql/${PG_VERSION}-${PG_CLUSTER}.pid`)).toBe(String(pid));
    expect(await logAfter(alpha, mark)).toMatch(/database system is ready to accept connections/);
    expect(await sh(alpha, `test -e ${PGDATA}/log/pgplay-startup.log && echo pg_ctl-log || echo none`)).toBe('none');

    mark = await logSize(alpha);
    const restart = await run('restart', one('restarted'), ['--yes']);
    expect(restart.exitCode, restart.stdout + restart.stderr).toBe(0);
    expect((await lsclusters(alpha)).status).toBe('online');
    const restarted = await alpha.postmasterPid();
    expect(restarted).not.toBe(pid);
    expect(await sh(alpha, `cat /var/run/postgresql/${PG_VERSION}-${PG_CLUSTER}.pid`)).toBe(String(restarted));
    expect(await logAfter(alpha, mark)).toMatch(/received fast shutdown request[\s\S]*ready to accept connections/);

    mark = await logSize(alpha);
    const reload = await run('reload', one('reloaded'));
    expect(reload.exitCode, reload.stdout + reload.stderr).toBe(0);
    expect(await logAfter(alpha, mark)).toMatch(/received SIGHUP, reloading configuration files/);
    expect(await alpha.postmasterPid()).toBe(restarted);
    expect(await alpha.psql('select pg_is_in_recovery()')).toBe('f');
    expect(await bravo.psql('select pg_is_in_recovery()')).toBe('t');
  }, 300_000);

  it('a standby killed during a wait fails the wait at once, with its log lines', async () => {
    await writeFile(join(work, 'promoted.yml'), 'name: promoted\nsteps:\n  - id: promoted\n    hosts: bravo\n    wait: { in_recovery: false, timeout: 5m, interval: 500ms }\n');
    const child = spawnPgplay(['run', join(work, 'promoted.yml'), '-i', inventory, '--output', 'json'], join(work, 'state'));
    // Once the wait runs, kill bravo's postmaster (SIGKILL: no shutdown, no goodbye in its log).
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        seen += d.toString();
        if (seen.includes('"type":"step-start"')) resolve();
      });
      child.once('exit', () => reject(new Error(`pgplay ended before the wait started:\n${seen}`)));
    });
    const pid = await bravo.postmasterPid();
    expect(pid).toBeDefined();
    await sh(bravo, `kill -KILL ${pid}`, 'root');
    const r = await finished(await child);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    const message = failure(r.stdout);
    expect(message).toMatch(/PostgreSQL on bravo is not running/);
    expect(message).toContain(LOG);
    // Its log's last lines: the standby's own startup and streaming, before the kill.
    expect(message).toMatch(/started streaming WAL|ready to accept read-only connections|consistent recovery state/);
    expect(message).not.toMatch(/condition not met after 5m/);
  }, 300_000);

  it("a standby whose replication role does not exist fails the streaming wait within its log's repeats, naming the role", async () => {
    // The children of the killed postmaster end on their own; then bravo streams as a role alpha lacks.
    await bravo.exec(['sh', '-c', `for p in ${await bravoChildren()}; do while kill -0 $p 2>/dev/null; do sleep 0.2; done; done`], { user: 'root' });
    await sh(bravo, `echo "primary_conninfo = 'host=${alpha.address} port=5432 user=ghost application_name=bravo'" >> ${PGDATA}/postgresql.auto.conf`);
    const r = await run(
      'ghost',
      `name: ghost
steps:
  - id: start
    hosts: bravo
    postgres: { state: started }
  - id: streaming
    hosts: alpha
    wait: { streaming: bravo, timeout: 5m, interval: 500ms }
`,
    );
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(jsonEvents(r.stdout).filter((e) => e.type === 'step-result').map((e) => `${e.step}=${e.status}`)).toEqual(['start=changed', 'streaming=failed']);
    const message = failure(r.stdout);
    expect(message).toMatch(/the role "ghost" does not exist on the upstream/);
    expect(message).toMatch(/bravo logged this 3 times since the watch began/);
    expect(message).toContain(LOG);
    expect(message).toMatch(/FATAL: {1,2}role "ghost" does not exist/);
    expect(message).not.toMatch(/condition not met after 5m/);
    expect((await lsclusters(bravo)).status).toBe('online,recovery');
  }, 300_000);

  it('a restored standby gets the Debian configuration directory it lacks; files already there are kept', async () => {
    const dir = CONFIG_DIR;
    const stop = await run('stop-bravo', 'name: stop-bravo\nsteps:\n  - id: stop\n    hosts: bravo\n    postgres: { state: stopped }\n');
    expect(stop.exitCode, stop.stdout + stop.stderr).toBe(0);
    expect((await lsclusters(bravo)).status).toBe('down,recovery');
    await sh(bravo, `mv ${dir} ${dir}.gone`, 'root');
    const play = (steps: string) => `name: debian-cluster\nsteps:\n  - id: files\n    hosts: bravo\n    debian_cluster: { hba_from: alpha }\n${steps}`;

    // Without the directory: every file, pg_hba.conf and pg_ident.conf from alpha; Debian knows the cluster.
    const first = await run('debian-cluster', play(''));
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    expect(await sh(bravo, `cd ${dir} && stat -c '%n %a %U' postgresql.conf pg_hba.conf pg_ident.conf start.conf pg_ctl.conf environment conf.d`, 'root')).toBe(
      ['postgresql.conf 644 postgres', 'pg_hba.conf 640 postgres', 'pg_ident.conf 640 postgres', 'start.conf 644 postgres', 'pg_ctl.conf 644 postgres', 'environment 644 postgres', 'conf.d 755 postgres'].join('\n'),
    );
    const conf = await sh(bravo, `cat ${dir}/postgresql.conf`);
    expect(conf).toContain(`data_directory = '${PGDATA}'`);
    expect(conf).toContain(`hba_file = '${dir}/pg_hba.conf'`);
    expect(conf).toContain(`ident_file = '${dir}/pg_ident.conf'`);
    expect(conf).toContain("include_dir = 'conf.d'");
    expect(await sh(bravo, `cat ${dir}/pg_hba.conf`)).toBe(await sh(alpha, `cat ${dir}/pg_hba.conf`));
    expect(await lsclusters(bravo)).toEqual({ status: 'down,recovery', pgdata: PGDATA, log: LOG });

    // With the directory: the user's own files stay; only the missing ones are written; it starts.
    await sh(bravo, `echo "listen_addresses = '${bravo.address}'" > ${dir}/conf.d/listen.conf && echo '# my own rule' >> ${dir}/pg_hba.conf && rm ${dir}/start.conf ${dir}/environment`);
    await sh(bravo, `echo "primary_conninfo = 'host=${alpha.address} port=5432 user=postgres application_name=bravo'" >> ${PGDATA}/postgresql.auto.conf`);
    const second = await run('debian-cluster', play('  - id: start\n    hosts: bravo\n    postgres: { state: started }\n'));
    expect(second.exitCode, second.stdout + second.stderr).toBe(0);
    expect(jsonEvents(second.stdout).find((e) => e.type === 'step-result' && e.step === 'files')?.msg).toBe(`wrote start.conf, environment in ${dir}`);
    expect(await sh(bravo, `tail -n 1 ${dir}/pg_hba.conf; cat ${dir}/conf.d/listen.conf`)).toBe(`# my own rule\nlisten_addresses = '${bravo.address}'`);
    expect((await lsclusters(bravo)).status).toBe('online,recovery');
    expect(await bravo.psql('select pg_is_in_recovery()')).toBe('t');

    const third = await run('debian-cluster', play(''));
    expect(third.exitCode).toBe(0);
    expect(jsonEvents(third.stdout).find((e) => e.type === 'step-result' && e.step === 'files')?.status).toBe('ok');
  }, 300_000);
});
