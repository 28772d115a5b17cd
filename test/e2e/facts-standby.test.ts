/**
 * A streaming standby built only from pgplay's pieces, on PostgreSQL 11 (recovery.conf with
 * standby_mode) and 17 (settings file + standby.signal): the rendered postgresql.conf / pg_hba.conf,
 * recoveryFiles(), a password-free primary_conninfo with passfile, and a .pgpass whose password
 * needs escaping. The facts then show the standby in recovery and the primary's streaming client.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { chown, mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa, execaSync } from 'execa';
import { createRenderer } from '../../src/render/index.js';
import { SHIPPED_TEMPLATES } from '../../src/core/paths.js';
import { hostScope } from '../../src/engine/scope.js';
import { ensureIncludeDir, PGPLAY_CONF_FILE } from '../../src/postgres/config.js';
import { recoveryFiles } from '../../src/postgres/recovery.js';
import { buildConninfo } from '../../src/postgres/conninfo.js';
import { mergePgpass, PGPASS_MODE } from '../../src/postgres/pgpass.js';
import { factsArgv, parseFacts } from '../../src/postgres/facts.js';
import { LocalTransport } from '../../src/transports/local.js';
import type { Host, Inventory } from '../../src/model/inventory.js';
import { hostForCluster, PG_OS_USER, startCluster, stopAllClusters, type Cluster } from '../support/cluster.js';

const renderer = createRenderer({ templateDirs: [SHIPPED_TEMPLATES] });
const PASSWORD = process.env.PW ?? "pa:ss\\w#rd'1";
const pgUid = Number(execaSync('id', ['-u', PG_OS_USER]).stdout);
const pgGid = Number(execaSync('id', ['-g', PG_OS_USER]).stdout);

afterAll(async () => {
  await stopAllClusters();
});

async function writeAsPostgres(path: string, content: string, mode = 0o600) {
  await mkdir(dirname(path), { recursive: true });
  await chown(dirname(path), pgUid, pgGid);
  await writeFile(path, content, { mode });
  await chown(path, pgUid, pgGid);
}

async function facts(host: Host) {
  const t = new LocalTransport(host);
  try {
    return parseFacts((await t.exec(factsArgv(host), { become: PG_OS_USER })).stdout);
  } finally {
    await t.close();
  }
}

describe.each([
  { version: 11, port: 25451 },
  { version: 17, port: 25471 },
])('a standby on PostgreSQL $version from pgplay recovery files', ({ version, port }) => {
  it('streams from the primary, replays its writes, and reads right in the facts', async () => {
    const primary: Cluster = await startCluster({ version, port, auth: 'peer', noStart: true });
    const standby: Cluster = await startCluster({ version, port: port + 1, init: false, noStart: true });
    const db1 = hostForCluster(primary, { version });
    const db2 = hostForCluster(standby, { name: 'db2', role: 'standby', upstream: 'db1', version });
    const inventory: Inventory = { cluster: 'main', postgres: { version }, replication: { user: 'replicator' }, backup: { tool: 'basebackup' }, hosts: {} };
    const scope = (name: string) =>
      hostScope({ params: {}, vars: {}, inventory, hosts: { db1, db2 }, facts: {}, registered: {} }, name);

    await writeAsPostgres(join(primary.pgdata, PGPLAY_CONF_FILE), await renderer.renderFile('postgresql.conf.hbs', scope('db1')));
    await writeAsPostgres(join(primary.pgdata, 'pg_hba.conf'), await renderer.renderFile('pg_hba.conf.hbs', scope('db1')));
    const conf = join(primary.pgdata, 'postgresql.conf');
    await writeFile(conf, ensureIncludeDir(await readFile(conf, 'utf8')).text);
    await primary.start();
    await primary.psql(`create role replicator with replication login password '${PASSWORD.replace(/'/g, "''")}'`);
    await primary.psql("select pg_create_physical_replication_slot('pgplay_db2')");
    await primary.psql('create table t(i int primary key); insert into t values (1)');

    // A cold copy is a consistent base backup, and works whatever the client tools' version.
    await primary.stop({ keep: true });
    await execa('cp', ['-a', primary.pgdata, standby.pgdata]);
    await primary.start();

    const passfile = join(standby.dir, 'pgpass');
    await writeAsPostgres(passfile, mergePgpass('', [{ host: '127.0.0.1', port, database: 'replication', user: 'replicator', password: PASSWORD }]), PGPASS_MODE);
    const primaryConninfo = buildConninfo({ host: '127.0.0.1', port, user: 'replicator', applicationName: 'db2', passfile });
    expect(primaryConninfo).not.toContain('pa:ss');
    await writeAsPostgres(join(standby.pgdata, PGPLAY_CONF_FILE), await renderer.renderFile('postgresql.conf.hbs', scope('db2')));
    const plan = await recoveryFiles({ version, mode: 'standby', primaryConninfo, primarySlotName: 'pgplay_db2' });
    for (const f of plan.files) await writeAsPostgres(join(standby.pgdata, f.path), f.content, f.mode);
    await standby.start();

    await expect
      .poll(() => primary.psql("select state || ':' || coalesce(slot_name, '') from pg_stat_replication r left join pg_replication_slots s on s.active_pid = r.pid where application_name = 'db2'"), {
        timeout: 30_000,
      })
      .toBe('streaming:pgplay_db2')
      .catch(async (e) => {
        throw new Error(`${(e as Error).message}\n--- standby log ---\n${(await standby.log()).slice(-1500)}\n--- primary log ---\n${(await primary.log()).slice(-1500)}`);
      });
    await primary.psql('insert into t values (2)');
    await expect.poll(() => standby.psql('select string_agg(i::text, \',\' order by i) from t'), { timeout: 15_000 }).toBe('1,2');

    if (version === 11) {
      await access(join(standby.pgdata, 'recovery.conf'));
      await expect(access(join(standby.pgdata, 'standby.signal'))).rejects.toThrow();
    } else {
      await access(join(standby.pgdata, 'standby.signal'));
      await expect(access(join(standby.pgdata, 'recovery.conf'))).rejects.toThrow();
      expect(await standby.psql('show primary_slot_name')).toBe('pgplay_db2');
    }
    expect(await standby.psql('select conninfo from pg_stat_wal_receiver')).not.toContain('pa:ss');

    const sf = await facts(db2);
    const pf = await facts(db1);
    expect(sf).toMatchObject({ running: true, version, in_recovery: true, replay_paused: false, timeline: 1, system_identifier: pf.system_identifier });
    expect(pf).toMatchObject({ running: true, version, in_recovery: false });
    expect(pf.replication_clients).toEqual([
      expect.objectContaining({ application_name: 'db2', client_addr: '127.0.0.1', state: 'streaming', sync_state: 'async' }),
    ]);
  });
});
