/**
 * The pgbackrest action through the real CLI and engine: a playbook with params and registered
 * results, run, run again, planned, and a guarded restore refused with exit code 3. Real PostgreSQL 15
 * and pgBackRest 2.45, everything under one temp dir (port 25603).
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { PG_OS_USER, startCluster, stopAllClusters, type Cluster } from '../support/cluster.js';

const PORT = 25603;

interface Event {
  type: string;
  step?: string;
  status?: string;
  msg?: string;
  exitCode?: number;
  error?: { code: string; message: string; hint?: string };
}

let tmp: string;
let primary: Cluster;
let inventory: string;
let playbook: string;
let restorePlaybook: string;

async function pgplay(args: string[]) {
  const r = await runCli(args);
  const events = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Event);
  return { ...r, events, results: events.filter((e) => e.type === 'step-result') };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pgplay-pgbr-cli-'));
  for (const d of ['repo', 'log', 'lock', 'pg']) await mkdir(join(tmp, d));
  const conf = join(tmp, 'pgbackrest.conf');
  const pg = join(tmp, 'pg');
  await writeFile(
    conf,
    [
      '[global]',
      `repo1-path=${join(tmp, 'repo')}`,
      'repo1-retention-full=2',
      `log-path=${join(tmp, 'log')}`,
      `lock-path=${join(tmp, 'lock')}`,
      'start-fast=y',
      '',
      '[cli]',
      `pg1-path=${join(pg, 'data')}`,
      `pg1-port=${PORT}`,
      `pg1-socket-path=${join(pg, 'sock')}`,
      '',
    ].join('\n'),
  );
  await execa('chown', ['-R', `${PG_OS_USER}:${PG_OS_USER}`, tmp]);
  await execa('chmod', ['755', tmp]);
  primary = await startCluster({
    dir: pg,
    port: PORT,
    auth: 'peer',
    settings: { wal_level: 'replica', archive_mode: 'on', archive_command: `pgbackrest --config=${conf} --stanza=cli archive-push %p` },
  });

  inventory = join(tmp, 'inventory.yml');
  await writeFile(
    inventory,
    [
      'cluster: cli',
      'postgres:',
      '  version: 15',
      `  bindir: ${primary.bindir}`,
      `  port: ${PORT}`,
      `  socketDir: ${primary.socketDir}`,
      'connection: { transport: local, become: postgres }',
      'backup: { tool: pgbackrest }',
      'hosts:',
      `  db1: { address: 127.0.0.1, role: primary, pgdata: ${primary.pgdata}, vars: { pgbackrest_config: ${conf} } }`,
      '',
    ].join('\n'),
  );
  playbook = join(tmp, 'backup.yml');
  await writeFile(
    playbook,
    [
      'name: pgbackrest-cli',
      'params:',
      '  type: { type: string, enum: [full, diff, incr], default: incr }',
      'steps:',
      '  - id: stanza',
      '    hosts: primary',
      '    pgbackrest: { command: stanza-create }',
      '  - id: backup',
      '    hosts: primary',
      '    pgbackrest: { command: backup, type: "{{params.type}}" }',
      '    register: bk',
      '  - id: info',
      '    hosts: primary',
      '    pgbackrest: { command: info }',
      '    register: info',
      '  - id: newest',
      '    hosts: primary',
      '    assert:',
      '      that: ["info.latest.label == bk.label", "info.status.code == 0"]',
      '    when: "defined(bk.label)"',
      '  - id: verify',
      '    hosts: primary',
      '    pgbackrest: { command: verify }',
      '',
    ].join('\n'),
  );
  restorePlaybook = join(tmp, 'restore.yml');
  await writeFile(
    restorePlaybook,
    ['name: restore-over-primary', 'steps:', '  - id: restore', '    hosts: primary', '    pgbackrest: { command: restore, delta: true }', ''].join('\n'),
  );
});

afterAll(async () => {
  await stopAllClusters();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('pgbackrest steps through pgplay run and plan', () => {
  it('first run creates the stanza and takes a full (incr requested); the registered result feeds the assert', async () => {
    const r = await pgplay(['run', playbook, '-i', inventory, '--output', 'json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.results.map((e) => `${e.step}=${e.status}`)).toEqual(['stanza=changed', 'backup=changed', 'info=ok', 'newest=ok', 'verify=ok']);
    const backup = r.results.find((e) => e.step === 'backup')!;
    expect(backup.msg).toMatch(/^took a full backup \d{8}-\d{6}F .*; incr requested, pgBackRest took a full backup: no prior backup exists$/);
  });

  it('second run: the stanza is ok, a new incr is taken', async () => {
    const r = await pgplay(['run', playbook, '-i', inventory, '--output', 'json']);
    expect(r.exitCode).toBe(0);
    expect(r.results.map((e) => `${e.step}=${e.status}`)).toEqual(['stanza=ok', 'backup=changed', 'info=ok', 'newest=ok', 'verify=ok']);
    expect(r.results.find((e) => e.step === 'backup')!.msg).toMatch(/^took a incr backup \d{8}-\d{6}F_\d{8}-\d{6}I /);
    expect(r.results.find((e) => e.step === 'info')!.msg).toMatch(/^stanza cli: ok, 2 backups, latest \d{8}-\d{6}F_\d{8}-\d{6}I \(incr, /);
  });

  it('plan says what would happen and takes no backup', async () => {
    const r = await pgplay(['plan', playbook, '-i', inventory, '-p', 'type=diff', '--output', 'json']);
    expect(r.exitCode).toBe(0);
    expect(r.results.find((e) => e.step === 'stanza')).toMatchObject({ status: 'ok' });
    expect(r.results.find((e) => e.step === 'backup')).toMatchObject({ status: 'changed', msg: 'would take a diff backup' });
    const after = await pgplay(['run', playbook, '-i', inventory, '--output', 'json', '-p', 'type=full']);
    expect(after.results.find((e) => e.step === 'info')!.msg).toMatch(/, 3 backups, /);
  });

  it('a restore over the running primary is refused with exit code 3, before any confirmation', async () => {
    const r = await pgplay(['run', restorePlaybook, '-i', inventory, '--output', 'json', '--yes']);
    expect(r.exitCode).toBe(3);
    const result = r.results.find((e) => e.step === 'restore')!;
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject({
      code: 'GUARD',
      message: `refusing to restore over db1: it is the inventory's primary, and a restore replaces its PGDATA ${primary.pgdata}`,
    });
    expect(await primary.psql('select 1')).toBe('1');
  });
});
