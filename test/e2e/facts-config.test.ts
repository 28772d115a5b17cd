/**
 * pgplay's rendered postgresql.conf include file and pg_hba.conf on real servers of three majors:
 * the server starts with them, applies the version-specific settings, reports no pg_hba errors,
 * and the facts read through the socket the template configured.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFile, writeFile, mkdir, chown } from 'node:fs/promises';
import { execaSync } from 'execa';
import { join } from 'node:path';
import { createRenderer } from '../../src/render/index.js';
import { SHIPPED_TEMPLATES } from '../../src/core/paths.js';
import { hostScope } from '../../src/engine/scope.js';
import { ensureIncludeDir, PGPLAY_CONF_FILE } from '../../src/postgres/config.js';
import { factsArgv, parseFacts } from '../../src/postgres/facts.js';
import { LocalTransport } from '../../src/transports/local.js';
import type { Inventory } from '../../src/model/inventory.js';
import { hostForCluster, PG_OS_USER, startCluster, stopAllClusters } from '../support/cluster.js';

const renderer = createRenderer({ templateDirs: [SHIPPED_TEMPLATES] });

afterAll(async () => {
  await stopAllClusters();
});

describe.each([
  { version: 11, port: 25441 },
  { version: 15, port: 25445 },
  { version: 17, port: 25447 },
])('PostgreSQL $version with pgplay templates', ({ version, port }) => {
  it('starts with the rendered files and applies them', async () => {
    const c = await startCluster({ version, port, noStart: true });
    const host = hostForCluster(c, { version });
    host.postgres.settings = { work_mem: '8MB', log_min_messages: 'warning' };
    host.postgres.hba = [{ type: 'host', database: 'all', user: 'app', address: '127.0.0.5', method: 'reject' }];
    const standby = { ...host, name: 'db2', role: 'standby' as const, address: '127.0.0.2' };
    const inventory: Inventory = {
      cluster: 'main',
      postgres: { version },
      replication: { user: 'replicator' },
      backup: { tool: 'basebackup' },
      hosts: {},
    };
    const scope = hostScope({ params: {}, vars: {}, inventory, hosts: { db1: host, db2: standby }, facts: {}, registered: {} }, 'db1');

    await mkdir(join(c.pgdata, 'conf.d'), { recursive: true });
    await writeFile(join(c.pgdata, PGPLAY_CONF_FILE), await renderer.renderFile('postgresql.conf.hbs', scope), { mode: 0o600 });
    await writeFile(join(c.pgdata, 'pg_hba.conf'), await renderer.renderFile('pg_hba.conf.hbs', scope), { mode: 0o600 });
    const confPath = join(c.pgdata, 'postgresql.conf');
    const included = ensureIncludeDir(await readFile(confPath, 'utf8'));
    expect(included.changed).toBe(true);
    expect(ensureIncludeDir(included.text).changed).toBe(false);
    await writeFile(confPath, included.text);
    const pgUid = Number(execaSync('id', ['-u', PG_OS_USER]).stdout);
    for (const p of [join(c.pgdata, 'conf.d'), join(c.pgdata, PGPLAY_CONF_FILE), join(c.pgdata, 'pg_hba.conf')]) await chown(p, pgUid, -1);

    await c.start();
    expect(await c.psql('show wal_log_hints')).toBe('on');
    expect(await c.psql('show work_mem')).toBe('8MB');
    // backup.tool basebackup keeps a WAL archive (issue 13): archiving on, through pgplay-wal.
    expect(await c.psql('show archive_mode')).toBe('on');
    expect(await c.psql('show archive_command')).toContain('/bin/pgplay-wal push ');
    if (version >= 13) expect(await c.psql('show wal_keep_size')).toBe('1GB');
    else expect(await c.psql('show wal_keep_segments')).toBe('64');
    expect(await c.psql('select count(*) from pg_file_settings where error is not null')).toBe('0');
    // Every setting in pgplay's file is in force (it is included last, so it wins over postgresql.conf).
    // From 13 max_slot_wal_keep_size joins them (a lost standby's slot cannot fill the primary's disk);
    // basebackup's archiving brings archive_command along with archive_mode.
    expect(await c.psql("select count(*) from pg_file_settings where sourcefile like '%/conf.d/pgplay.conf'")).toBe(version >= 13 ? '14' : '13');
    if (version >= 13) expect(await c.psql('show max_slot_wal_keep_size')).toBe('10GB');
    expect(await c.psql("select count(*) from pg_file_settings where sourcefile like '%/conf.d/pgplay.conf' and not applied")).toBe('0');
    expect(await c.psql('select count(*) from pg_hba_file_rules where error is not null')).toBe('0');
    expect(await c.psql("select string_agg(address, ',' order by line_number) from pg_hba_file_rules where 'replication' = any(database)")).toBe(
      '127.0.0.1,127.0.0.2',
    );
    const method = await c.psql("select auth_method from pg_hba_file_rules where address = '127.0.0.5'");
    expect(method).toBe('reject');

    const t = new LocalTransport(host);
    try {
      const f = parseFacts((await t.exec(factsArgv(host), { become: PG_OS_USER })).stdout);
      expect(f).toMatchObject({ running: true, version, in_recovery: false });
      expect(f.error).toBeUndefined();
    } finally {
      await t.close();
    }
  });
});
