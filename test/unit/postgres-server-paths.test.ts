/**
 * The server's own config_file, hba_file and data_directory against the inventory's layout: the facts
 * section that reads them, the parser that names each contradiction, and the run that refuses (exit 3)
 * before its first step when one is found.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import { runPlaybook } from '../../src/app/run-playbook.js';
import { resolveHosts } from '../../src/load/hosts.js';
import type { Host, Inventory } from '../../src/model/inventory.js';
import { parseServerPaths, serverPathsScript } from '../../src/postgres/server-paths.js';
import { FakeTransport } from '../../src/transports/fake.js';

const debianHost = (extra: Partial<Inventory['hosts'][string]> = {}, postgres: Partial<Inventory['postgres']> = {}): Host =>
  resolveHosts({ cluster: 'c', postgres: { version: 15, layout: 'debian', ...postgres }, hosts: { db1: { address: '10.0.0.1', role: 'primary', ...extra } } })
    .db1!;

/** The facts output of a server that answered, with each path resolved as the script resolves it. */
function answered(paths: { config_file: string; hba_file: string; data_directory: string }, inventory: { pgdata: string; configDir: string }): string {
  return [
    `paths.inventory_pgdata_real=${inventory.pgdata}`,
    `paths.inventory_config_dir_real=${inventory.configDir}`,
    ...Object.entries(paths).flatMap(([k, v]) => [`paths.${k}=${v}`, `paths.${k}_real=${v}`]),
    'paths.end=1',
  ].join('\n');
}

describe('parseServerPaths', () => {
  const debianServer = {
    config_file: '/etc/postgresql/15/main/postgresql.conf',
    hba_file: '/etc/postgresql/15/main/pg_hba.conf',
    data_directory: '/var/lib/postgresql/15/main',
  };

  it('a Debian server as the inventory describes it: its paths, no contradiction', () => {
    const host = debianHost();
    expect(parseServerPaths(answered(debianServer, { pgdata: host.pgdata!, configDir: host.postgres.configDir! }), host)).toEqual(debianServer);
  });

  it('a server running from another data directory than the inventory says', () => {
    const host = debianHost({ pgdata: '/var/lib/postgresql/15/other' });
    const facts = parseServerPaths(answered(debianServer, { pgdata: '', configDir: '/etc/postgresql/15/main' }), host);
    expect(facts.layout_contradictions).toEqual([
      "the server at /var/run/postgresql port 5432 runs from data_directory /var/lib/postgresql/15/main, but the inventory's pgdata is /var/lib/postgresql/15/other",
    ]);
  });

  it('debian layout against a server whose config is in PGDATA: config_file and hba_file are named', () => {
    const host = debianHost();
    const inPgdata = { config_file: `${debianServer.data_directory}/postgresql.conf`, hba_file: `${debianServer.data_directory}/pg_hba.conf`, data_directory: debianServer.data_directory };
    expect(parseServerPaths(answered(inPgdata, { pgdata: host.pgdata!, configDir: '' }), host).layout_contradictions).toEqual([
      'the server at /var/run/postgresql port 5432 reads config_file /var/lib/postgresql/15/main/postgresql.conf, but with layout debian (cluster main) pgplay writes /etc/postgresql/15/main/postgresql.conf',
      'the server at /var/run/postgresql port 5432 reads hba_file /var/lib/postgresql/15/main/pg_hba.conf, but with layout debian (cluster main) pgplay writes /etc/postgresql/15/main/pg_hba.conf',
    ]);
  });

  it('pgdata layout against a Debian server: the config is not in PGDATA', () => {
    const host = debianHost({}, { layout: 'pgdata' });
    const host2 = { ...host, pgdata: debianServer.data_directory, postgres: { ...host.postgres, configDir: debianServer.data_directory } };
    expect(parseServerPaths(answered(debianServer, { pgdata: host2.pgdata, configDir: host2.pgdata }), host2).layout_contradictions).toEqual([
      'the server at /var/run/postgresql port 5432 reads config_file /etc/postgresql/15/main/postgresql.conf, but with layout pgdata pgplay writes /var/lib/postgresql/15/main/postgresql.conf',
      'the server at /var/run/postgresql port 5432 reads hba_file /etc/postgresql/15/main/pg_hba.conf, but with layout pgdata pgplay writes /var/lib/postgresql/15/main/pg_hba.conf',
    ]);
  });

  it('nothing answered (server down, no socket, psql failed) or the output was cut: no paths, no verdict', () => {
    const host = debianHost();
    expect(parseServerPaths('paths.inventory_pgdata_real=/x\npaths.end=1\n', host)).toEqual({});
    expect(parseServerPaths(answered(debianServer, { pgdata: '/elsewhere', configDir: '/elsewhere' }).replace('paths.end=1', ''), host)).toEqual({});
  });
});

describe('the server-paths script', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-server-paths-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves symlinks on both sides, so a symlinked PGDATA is no contradiction; prints nothing of the server without its socket', async () => {
    const real = join(dir, 'real-data');
    await mkdir(real);
    await symlink(real, join(dir, 'data'));
    const host = debianHost({}, { layout: 'pgdata' });
    const script = serverPathsScript({ ...host, pgdata: join(dir, 'data'), postgres: { ...host.postgres, socketDir: join(dir, 'no-socket'), configDir: join(dir, 'data') } });
    const out = execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
    expect(out.trim().split('\n')).toEqual([`paths.inventory_pgdata_real=${real}`, `paths.inventory_config_dir_real=${real}`, 'paths.end=1']);
  });

  it('a host without PGDATA (a repository) gets no section', () => {
    const host = resolveHosts({ cluster: 'c', postgres: { version: 15, layout: 'debian' }, hosts: { bk1: { address: '10.0.0.9', role: 'repository' } } }).bk1!;
    expect(serverPathsScript(host)).toBe('');
  });
});

describe('a run against a server that contradicts the inventory', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-layout-guard-'));
    await writeFile(
      join(dir, 'inventory.yml'),
      ['cluster: main', 'postgres: { version: 15, layout: debian }', 'connection: { transport: local }', 'hosts:', '  db1: { address: 127.0.0.1, role: primary }', '  db2: { address: 127.0.0.2, role: standby, upstream: db1, postgres: { cluster: replica } }', ''].join('\n'),
    );
    await writeFile(join(dir, 'playbook.yml'), ['name: p', 'steps:', '  - id: one', '    hosts: all', '    command: { argv: [touch, /tmp/never] }', ''].join('\n'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses before the first step (exit 3), naming the host and the contradiction', async () => {
    const execs: string[] = [];
    const run = runPlaybook({
      playbookFile: join(dir, 'playbook.yml'),
      inventoryFile: join(dir, 'inventory.yml'),
      params: {},
      check: false,
      diff: false,
      onEvent: () => undefined,
      createTransport: (host) =>
        new FakeTransport(host.name, (argv) => {
          execs.push(argv.join(' '));
          return { exitCode: 0 };
        }),
      gatherFacts: async (host) => ({
        reachable: true,
        pgdata_present: true,
        running: true,
        ...(host.name === 'db2' ? { layout_contradictions: ['the server at /var/run/postgresql port 5432 runs from data_directory /srv/x, but the inventory\'s pgdata is /var/lib/postgresql/15/main'] } : {}),
      }),
    });
    const error = await run.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PgplayError);
    const e = error as PgplayError;
    expect(e.exitCode).toBe(3);
    expect(e.host).toBe('db2');
    expect(e.message).toBe(
      "the inventory contradicts the running server: db2: the server at /var/run/postgresql port 5432 runs from data_directory /srv/x, but the inventory's pgdata is /var/lib/postgresql/15/main",
    );
    expect(e.hint).toMatch(/pgdata, postgres\.layout/);
    expect(execs).toEqual([]);
  });
});
