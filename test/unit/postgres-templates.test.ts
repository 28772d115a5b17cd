/**
 * The shipped configuration templates, rendered with the engine's own scope for realistic
 * inventories: golden files for every host, plus the rules each file must keep per major version.
 */
import { describe, expect, it } from 'vitest';
import { createRenderer } from '../../src/render/index.js';
import { SHIPPED_TEMPLATES } from '../../src/core/paths.js';
import { resolveHosts } from '../../src/load/hosts.js';
import { hostScope } from '../../src/engine/scope.js';
import type { Inventory } from '../../src/model/inventory.js';
import { PgplayError } from '../../src/core/errors.js';
import { expectGoldenFile } from '../golden/golden.js';

const renderer = createRenderer({ templateDirs: [SHIPPED_TEMPLATES] });

/** The DESIGN.md topology: SSH, PostgreSQL 15, a repository host, backups from the standby. */
const prod: Inventory = {
  cluster: 'main',
  postgres: {
    version: 15,
    settings: { shared_buffers: '1GB', max_connections: 200, 'pg_stat_statements.track': 'all' },
    hba: [{ type: 'hostssl', database: 'app', user: 'app', address: '10.0.1.0/24', method: 'scram-sha-256' }],
  },
  connection: { transport: 'ssh', user: 'root', become: 'postgres' },
  replication: { user: 'replicator', password: { env: 'PGPLAY_REPLICATION_PASSWORD' }, slots: true },
  backup: {
    tool: 'pgbackrest',
    stanza: 'main',
    repoHost: 'bk1',
    repoPath: '/var/lib/pgbackrest',
    retention: { full: 2, diff: 7 },
    fromStandby: true,
    compressType: 'lz4',
    processMax: 4,
    cipherPass: { env: 'PGPLAY_CIPHER_PASS' },
  },
  hosts: {
    db1: { address: '10.0.0.11', role: 'primary', pgdata: '/var/lib/postgresql/15/main' },
    db2: { address: '10.0.0.12', role: 'standby', upstream: 'db1', pgdata: '/var/lib/postgresql/15/main' },
    bk1: { address: '10.0.0.20', role: 'repository' },
    drill1: { address: '10.0.0.30', role: 'drill', pgdata: '/var/lib/pgplay/drill', postgres: { port: 5499 } },
  },
};

/** An old major on one machine: local transport, no repository host, host names and IPv6. */
const legacy: Inventory = {
  cluster: 'legacy',
  postgres: { version: 11, port: 5433, socketDir: '/tmp', settings: { listen_addresses: 'localhost' } },
  connection: { transport: 'local' },
  replication: { user: 'repl' },
  backup: { tool: 'pgbackrest' },
  hosts: {
    old1: { address: 'old1.example.net', role: 'primary', pgdata: '/srv/pg/11/a' },
    old2: { address: 'fd00::12', role: 'standby', upstream: 'old1', pgdata: '/srv/pg/11/b', postgres: { port: 5434 } },
  },
};

/** The newest major with pg_basebackup instead of pgBackRest and a custom superuser. */
const modern: Inventory = {
  cluster: 'next',
  postgres: { version: 17, superuser: 'dba', hba: [{ type: 'local', database: 'all', user: 'monitor', method: 'peer' }] },
  connection: { transport: 'ssh' },
  replication: { user: 'replicator' },
  backup: { tool: 'basebackup' },
  hosts: {
    n1: { address: '192.168.50.1', role: 'primary', pgdata: '/var/lib/postgresql/17/main' },
    n2: { address: '192.168.50.2', role: 'standby', upstream: 'n1', pgdata: '/var/lib/postgresql/17/main' },
  },
};

const INVENTORIES = { prod, legacy, modern };

function scope(inv: Inventory, hostName: string) {
  const hosts = resolveHosts(inv);
  return hostScope({ params: {}, vars: inv.vars ?? {}, inventory: inv, hosts, facts: {}, registered: {} }, hostName);
}

async function render(inv: Inventory, hostName: string, template: string) {
  return renderer.renderFile(template, scope(inv, hostName));
}

const PG_ROLES = new Set(['primary', 'standby', 'drill']);

describe('template golden files', () => {
  for (const [invName, inv] of Object.entries(INVENTORIES)) {
    for (const [hostName, entry] of Object.entries(inv.hosts)) {
      const templates = [
        ...(PG_ROLES.has(entry.role) ? ['postgresql.conf', 'pg_hba.conf'] : []),
        ...(inv.backup?.tool === 'pgbackrest' ? ['pgbackrest.conf'] : []),
      ];
      for (const t of templates) {
        it(`${invName} ${hostName} ${t}`, async () => {
          await expectGoldenFile(`templates/${invName}/${hostName}/${t}`, await render(inv, hostName, `${t}.hbs`));
        });
      }
    }
  }
});

/** name -> value for `name = value` lines (postgresql.conf) or `name=value` (pgbackrest.conf). */
function settingsOf(text: string, sep: '=' | ' = '): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#') || line.startsWith('[')) continue;
    const i = line.indexOf(sep);
    expect(i, `line "${line}"`).toBeGreaterThan(0);
    const k = line.slice(0, i);
    out.set(k, [...(out.get(k) ?? []), line.slice(i + sep.length)]);
  }
  return out;
}

describe('postgresql.conf.hbs', () => {
  it('uses wal_keep_segments up to 12 and wal_keep_size from 13', async () => {
    for (const version of [11, 12, 13, 14, 15, 16, 17]) {
      const inv = { ...prod, postgres: { ...prod.postgres, version } };
      const s = settingsOf(await render(inv, 'db1', 'postgresql.conf.hbs'), ' = ');
      expect(s.has('wal_keep_segments'), `v${version}`).toBe(version < 13);
      expect(s.has('wal_keep_size'), `v${version}`).toBe(version >= 13);
    }
  });

  it('archives with pgBackRest to the stanza on primary and standby, never on a drill host', async () => {
    for (const h of ['db1', 'db2']) {
      const s = settingsOf(await render(prod, h, 'postgresql.conf.hbs'), ' = ');
      expect(s.get('archive_mode')).toEqual(['on']);
      expect(s.get('archive_command')).toEqual(["'pgbackrest --stanza=main archive-push %p'"]);
    }
    const drill = settingsOf(await render(prod, 'drill1', 'postgresql.conf.hbs'), ' = ');
    expect(drill.get('archive_mode')).toEqual(['off']);
    expect(drill.has('archive_command')).toBe(false);
    expect(drill.get('port')).toEqual(['5499']);
    // backup.tool basebackup archives into the repository's WAL archive with the pgplay-wal command it ships.
    const modernConf = settingsOf(await render(modern, 'n1', 'postgresql.conf.hbs'), ' = ');
    expect(modernConf.get('archive_mode')).toEqual(['on']);
    expect(modernConf.get('archive_command')).toEqual(["'/var/lib/pgplay/backups/bin/pgplay-wal push /var/lib/pgplay/backups/wal %p %f'"]);
  });

  it('lets the inventory settings replace defaults, each setting written once', async () => {
    const s = settingsOf(await render(legacy, 'old1', 'postgresql.conf.hbs'), ' = ');
    for (const [k, v] of s) expect(v, k).toHaveLength(1);
    expect(s.get('listen_addresses')).toEqual(["'localhost'"]);
    expect(s.get('port')).toEqual(['5433']);
    expect(s.get('archive_command')).toEqual(["'pgbackrest --stanza=legacy archive-push %p'"]);
    const p = settingsOf(await render(prod, 'db1', 'postgresql.conf.hbs'), ' = ');
    expect(p.get('listen_addresses')).toEqual(["'10.0.0.11'"]);
    expect(p.get('max_connections')).toEqual(['200']);
    expect(p.get('pg_stat_statements.track')).toEqual(["'all'"]);
  });
});

describe('pg_hba.conf.hbs', () => {
  const rules = (text: string) =>
    text
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .map((l) => l.trim().split(/\s+/));

  it('lets every primary and standby stream, with a mask on IP literals, scram from 14 and md5 before', async () => {
    const r15 = rules(await render(prod, 'db1', 'pg_hba.conf.hbs'));
    expect(r15.filter((r) => r[1] === 'replication' && r[0] === 'host')).toEqual([
      ['host', 'replication', 'replicator', '10.0.0.11/32', 'scram-sha-256'],
      ['host', 'replication', 'replicator', '10.0.0.12/32', 'scram-sha-256'],
      // the repository host (pg_basebackup from there)
      ['host', 'replication', 'replicator', '10.0.0.20/32', 'scram-sha-256'],
    ]);
    const r11 = rules(await render(legacy, 'old2', 'pg_hba.conf.hbs'));
    expect(r11.filter((r) => r[1] === 'replication' && r[0] === 'host')).toEqual([
      ['host', 'replication', 'repl', 'old1.example.net', 'md5'],
      ['host', 'replication', 'repl', 'fd00::12/128', 'md5'],
    ]);
  });

  it('takes the password method from vars.hba_password_method for clusters with md5 secrets', async () => {
    const r = rules(await render({ ...prod, vars: { hba_password_method: 'md5' } }, 'db1', 'pg_hba.conf.hbs'));
    const methods = r.filter((x) => x[0] === 'host').map((x) => x[4]);
    expect(methods).toEqual(['md5', 'md5', 'md5', 'md5']);
  });

  it('keeps pgplay\'s peer rules (for the superuser only) first and the inventory rules in order after the replication rules', async () => {
    const r = rules(await render(prod, 'db2', 'pg_hba.conf.hbs'));
    expect(r[0]).toEqual(['local', 'all', 'postgres', 'peer']);
    expect(r[1]).toEqual(['local', 'replication', 'postgres', 'peer']);
    expect(r[4]).toEqual(['host', 'all', 'postgres', '10.0.0.20/32', 'scram-sha-256']);
    expect(r[6]).toEqual(['hostssl', 'app', 'app', '10.0.1.0/24', 'scram-sha-256']);
    const m = rules(await render(modern, 'n2', 'pg_hba.conf.hbs'));
    expect(m).toContainEqual(['local', 'all', 'monitor', 'peer']);
    for (const rule of [...r, ...m]) expect(rule.length, rule.join(' ')).toBe(rule[0] === 'local' ? 4 : 5);
  });
});

describe('pgbackrest.conf.hbs', () => {
  it('on the repository host: the repository, retention, and every primary and standby reached over SSH', async () => {
    const text = await render(prod, 'bk1', 'pgbackrest.conf.hbs');
    const s = settingsOf(text, '=');
    expect(s.get('repo1-path')).toEqual(['/var/lib/pgbackrest']);
    expect(s.get('repo1-retention-full')).toEqual(['2']);
    expect(s.get('repo1-retention-diff')).toEqual(['7']);
    expect(s.get('repo1-cipher-type')).toEqual(['aes-256-cbc']);
    expect(s.has('repo1-cipher-pass')).toBe(false);
    // pgBackRest needs pg1: the primary is pg1, each standby pg<inventory position + 2>.
    expect(s.get('pg1-host')).toEqual(['10.0.0.11']);
    expect(s.get('pg3-host')).toEqual(['10.0.0.12']);
    expect(s.get('pg1-path')).toEqual(['/var/lib/postgresql/15/main']);
    expect(s.get('backup-standby')).toEqual(['y']);
    expect([...s.keys()].filter((k) => /^pg\d+-path$/.test(k))).toEqual(['pg1-path', 'pg3-path']);
    expect(text).toContain('\n[main]\n');
  });

  it('on a database host with a remote repository: repo1-host and its own pg1', async () => {
    const s = settingsOf(await render(prod, 'db1', 'pgbackrest.conf.hbs'), '=');
    expect(s.get('repo1-host')).toEqual(['10.0.0.20']);
    expect(s.has('repo1-path')).toBe(false);
    expect(s.get('pg1-path')).toEqual(['/var/lib/postgresql/15/main']);
    expect(s.get('pg1-socket-path')).toEqual(['/var/run/postgresql']);
    expect(s.get('compress-type')).toEqual(['lz4']);
    expect(s.get('process-max')).toEqual(['4']);
  });

  it('without a repository host: a local repository with defaults', async () => {
    const s = settingsOf(await render(legacy, 'old2', 'pgbackrest.conf.hbs'), '=');
    expect(s.get('repo1-path')).toEqual(['/var/lib/pgbackrest']);
    expect(s.get('repo1-retention-full')).toEqual(['2']);
    expect(s.get('pg1-port')).toEqual(['5434']);
    expect(s.get('pg1-socket-path')).toEqual(['/tmp']);
    expect(s.has('repo1-host')).toBe(false);
  });

  it('a local-transport repository host on the same machine uses the paths directly', async () => {
    const lab: Inventory = {
      ...legacy,
      backup: { tool: 'pgbackrest', repoHost: 'bk', repoPath: '/srv/repo' },
      hosts: { ...legacy.hosts, bk: { address: '127.0.0.1', role: 'repository' } },
    };
    const repo = settingsOf(await render(lab, 'bk', 'pgbackrest.conf.hbs'), '=');
    expect(repo.get('pg1-path')).toEqual(['/srv/pg/11/a']);
    expect(repo.get('pg3-port')).toEqual(['5434']);
    expect([...repo.keys()].some((k) => k.endsWith('-host'))).toBe(false);
    const db = settingsOf(await render(lab, 'old1', 'pgbackrest.conf.hbs'), '=');
    expect(db.get('repo1-path')).toEqual(['/srv/repo']);
    expect(db.has('repo1-host')).toBe(false);
  });
});

describe('strict rendering', () => {
  it('a primary without pgdata is a render error naming the variable, not an empty path', async () => {
    const broken: Inventory = { ...prod, hosts: { ...prod.hosts, db1: { address: '10.0.0.11', role: 'primary' } } };
    const err = await render(broken, 'bk1', 'pgbackrest.conf.hbs').catch((e) => e);
    expect(err).toBeInstanceOf(PgplayError);
    expect(err.code).toBe('RENDER');
    expect(err.message).toContain('pgdata');
  });
});
