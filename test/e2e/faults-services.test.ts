import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pidAlive, PG_OS_USER, readPostmasterPid, startCluster, stopAllClusters, type Cluster } from '../support/cluster.js';
import { runCli } from '../support/cli.js';
import { journals, results } from './faults-support.js';

/**
 * Faults in the services pgplay drives, through the real CLI: a PostgreSQL that will not start (a bad
 * setting) and a pgBackRest that refuses (its stop file). Each run fails with exit 1 naming the step
 * and host, the journal records it, nothing half-done is left (no postmaster.pid, no partial
 * backup), and --resume once the cause is removed completes the run. Ports 25651-25652.
 */
const PG_PORT = 25651;
const BR_PORT = 25652;

let tmp: string;
let stateDir: string;

async function pgplay(args: string[]) {
  return runCli([...args, '--state-dir', stateDir]);
}

async function lastJournal() {
  return (await journals(stateDir)).at(-1)!;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pgplay-faults-svc-'));
  stateDir = join(tmp, 'state');
  await mkdir(join(tmp, 'out'));
  await execa('chmod', ['755', tmp]);
  // Steps run as postgres (become), and write their markers here.
  await execa('chown', [PG_OS_USER, join(tmp, 'out')]);
});

afterAll(async () => {
  await stopAllClusters();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('PostgreSQL that fails to start', () => {
  let cluster: Cluster;
  let inventory: string;
  let playbook: string;
  let conf: string;

  beforeAll(async () => {
    cluster = await startCluster({ dir: join(tmp, 'pg'), port: PG_PORT, auth: 'peer', noStart: true });
    conf = join(cluster.pgdata, 'postgresql.conf');
    inventory = join(tmp, 'pg-inventory.yml');
    await writeFile(
      inventory,
      [
        'cluster: startfail',
        'postgres:',
        '  version: 15',
        `  bindir: ${cluster.bindir}`,
        `  port: ${PG_PORT}`,
        `  socketDir: ${cluster.socketDir}`,
        'connection: { transport: local, become: postgres }',
        'hosts:',
        `  db1: { address: 127.0.0.1, role: primary, pgdata: ${cluster.pgdata} }`,
        '',
      ].join('\n'),
    );
    playbook = join(tmp, 'start.yml');
    await writeFile(
      playbook,
      [
        'name: start-and-mark',
        'steps:',
        '  - id: prepare',
        '    hosts: db1',
        `    command: { argv: [touch, ${join(tmp, 'out', 'prepared')}] }`,
        '  - id: start',
        '    hosts: db1',
        '    postgres: { state: started, wait_timeout: 30s }',
        '  - id: mark',
        '    hosts: db1',
        '    sql:',
        '      query: CREATE TABLE fault_marker (id int)',
        "      unless: SELECT to_regclass('public.fault_marker') IS NOT NULL",
        '',
      ].join('\n'),
    );
    // The fault: a setting the server cannot read, as a hand edit would leave it.
    await appendFile(conf, "shared_buffers = 'lots'\n");
  });

  it('fails with exit 1 naming step, host and the setting; journaled; no server half-started', async () => {
    const r = await pgplay(['run', playbook, '-i', inventory]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/\nstep start, host db1: [^\n]*/);
    expect(r.stdout).toContain('shared_buffers');
    expect(await readPostmasterPid(cluster.pgdata)).toBe(0);
    expect(existsSync(join(cluster.pgdata, 'postmaster.pid'))).toBe(false);

    const journal = await lastJournal();
    expect(results(journal.lines)).toEqual(['prepare@db1=changed', 'start@db1=failed']);
    expect(journal.lines.at(-1)).toMatchObject({ type: 'run-end', status: 'failed', exitCode: 1, error: { step: 'start', host: 'db1' } });
  });

  it('--resume after fixing the setting starts the server and completes the run', async () => {
    await writeFile(conf, (await readFile(conf, 'utf8')).replace("shared_buffers = 'lots'\n", ''));
    const r = await pgplay(['run', playbook, '-i', inventory, '--resume']);
    expect(r.exitCode).toBe(0);
    expect(results((await lastJournal()).lines)).toEqual(['prepare@db1=skipped', 'start@db1=changed', 'mark@db1=changed']);
    expect(pidAlive(await readPostmasterPid(cluster.pgdata))).toBe(true);
    expect(await cluster.psql("SELECT to_regclass('public.fault_marker') IS NOT NULL")).toBe('t');
  });
});

describe('pgBackRest that fails (stop file)', () => {
  let cluster: Cluster;
  let inventory: string;
  let playbook: string;
  let conf: string;
  const STANZA = 'stopped';
  const pgbackrest = (...args: string[]) =>
    execa('runuser', ['-u', PG_OS_USER, '--', 'pgbackrest', `--config=${conf}`, `--stanza=${STANZA}`, ...args]);

  beforeAll(async () => {
    const base = join(tmp, 'br');
    await mkdir(base);
    for (const d of ['repo', 'log', 'lock', 'pg']) await mkdir(join(base, d));
    conf = join(base, 'pgbackrest.conf');
    await writeFile(
      conf,
      [
        '[global]',
        `repo1-path=${join(base, 'repo')}`,
        `log-path=${join(base, 'log')}`,
        `lock-path=${join(base, 'lock')}`,
        'start-fast=y',
        '',
        `[${STANZA}]`,
        `pg1-path=${join(base, 'pg', 'data')}`,
        `pg1-port=${BR_PORT}`,
        `pg1-socket-path=${join(base, 'pg', 'sock')}`,
        '',
      ].join('\n'),
    );
    await execa('chown', ['-R', `${PG_OS_USER}:${PG_OS_USER}`, base]);
    cluster = await startCluster({
      dir: join(base, 'pg'),
      port: BR_PORT,
      auth: 'peer',
      settings: { wal_level: 'replica', archive_mode: 'on', archive_command: `pgbackrest --config=${conf} --stanza=${STANZA} archive-push %p` },
    });
    await pgbackrest('stanza-create');
    inventory = join(tmp, 'br-inventory.yml');
    await writeFile(
      inventory,
      [
        `cluster: ${STANZA}`,
        'postgres:',
        '  version: 15',
        `  bindir: ${cluster.bindir}`,
        `  port: ${BR_PORT}`,
        `  socketDir: ${cluster.socketDir}`,
        'connection: { transport: local, become: postgres }',
        `backup: { tool: pgbackrest, stanza: ${STANZA} }`,
        'hosts:',
        `  db1: { address: 127.0.0.1, role: primary, pgdata: ${cluster.pgdata}, vars: { pgbackrest_config: ${conf} } }`,
        '',
      ].join('\n'),
    );
    playbook = join(tmp, 'backup.yml');
    await writeFile(
      playbook,
      [
        'name: backup-after-prepare',
        'steps:',
        '  - id: prepare',
        '    hosts: primary',
        `    command: { argv: [touch, ${join(tmp, 'out', 'br-prepared')}] }`,
        '  - id: backup',
        '    hosts: primary',
        '    pgbackrest: { command: backup, type: full }',
        '  - id: info',
        '    hosts: primary',
        '    pgbackrest: { command: info }',
        '    register: info',
        '',
      ].join('\n'),
    );
    // The fault: someone stopped pgBackRest for this stanza.
    await pgbackrest('stop');
  });

  it('fails with exit 1 naming step, host and the stop file; journaled; no partial backup', async () => {
    const r = await pgplay(['run', playbook, '-i', inventory]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/\nstep backup, host db1: [^\n]*stop/i);
    const journal = await lastJournal();
    expect(results(journal.lines)).toEqual(['prepare@db1=changed', 'backup@db1=failed']);
    expect(journal.lines.at(-1)).toMatchObject({ type: 'run-end', status: 'failed', exitCode: 1, error: { step: 'backup', host: 'db1' } });
    const info = JSON.parse((await pgbackrest('info', '--output=json')).stdout) as Array<{ backup: unknown[] }>;
    expect(info[0]!.backup).toEqual([]);
    // Only the repository's own info files: no backup directory, not even a partial one.
    expect((await readdir(join(tmp, 'br', 'repo', 'backup', STANZA))).filter((f) => !f.startsWith('backup.info'))).toEqual([]);
  });

  it('--resume after pgbackrest start takes the backup and completes the run', async () => {
    await pgbackrest('start');
    const r = await pgplay(['run', playbook, '-i', inventory, '--resume']);
    expect(r.exitCode).toBe(0);
    expect(results((await lastJournal()).lines)).toEqual(['prepare@db1=skipped', 'backup@db1=changed', 'info@db1=ok']);
    const info = JSON.parse((await pgbackrest('info', '--output=json')).stdout) as Array<{ backup: Array<{ type: string }> }>;
    expect(info[0]!.backup.map((b) => b.type)).toEqual(['full']);
  });
});
