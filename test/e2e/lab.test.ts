import { execa } from 'execa';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedSteps, createLab, events, labUp, PLAYBOOKS, waitGone, type TestLab } from './lab-helpers.js';

describe('pgplay lab on this machine (PostgreSQL 15, pgBackRest 2.45)', () => {
  let lab: TestLab;
  let firstUp: string;

  beforeAll(async () => {
    lab = await createLab(26000, 'lab');
    firstUp = (await labUp(lab)).stdout;
  });

  // A lab that does not come down (a server left running, lab down failing) fails the suite.
  afterAll(async () => {
    await lab?.down();
  });

  it('builds a primary with sample data, running as the postgres OS user on its own loopback port', async () => {
    expect(firstUp).toMatch(/db1\s+primary\s+127\.0\.0\.1:26000\s+running \(pid \d+, read-write, timeline 1\)/);
    expect(firstUp).toMatch(/db2\s+standby\s+127\.0\.0\.1:26001\s+empty \(no PGDATA yet\)/);
    expect(firstUp).toMatch(/drill1\s+drill\s+127\.0\.0\.1:26002\s+empty \(no PGDATA yet\)/);
    const pid = await lab.postmasterPid('db1');
    expect(pid).toBeGreaterThan(0);
    const owner = (await execa('ps', ['-o', 'user=', '-p', String(pid)])).stdout.trim();
    expect(owner).toBe('postgres');
    expect(await lab.psql('db1', 'SELECT count(*), sum(balance) FROM accounts', 'app')).toBe('1000|5005000.00');
    expect(await lab.psql('db1', "SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'")).toBe('t');
    expect(await lab.psql('db1', "SELECT current_setting('listen_addresses'), current_setting('archive_mode')")).toBe('127.0.0.1|on');
  });

  it('gives every host its own directory, pgBackRest configuration and a stanza in the repository', async () => {
    for (const host of ['db1', 'db2', 'bk1', 'drill1']) {
      const st = await stat(join(lab.dir, host));
      expect(st.mode & 0o777, host).toBe(0o750);
      const conf = await readFile(join(lab.dir, host, 'pgbackrest.conf'), 'utf8');
      expect(conf).toContain(`log-path=${join(lab.dir, host, 'log')}`);
      expect(conf).toContain(`lock-path=${join(lab.dir, host, 'lock')}`);
    }
    const repo = await readFile(join(lab.dir, 'bk1', 'pgbackrest.conf'), 'utf8');
    expect(repo).toContain(`pg1-path=${lab.pgdata('db1')}`);
    expect(repo).toContain(`pg3-path=${lab.pgdata('db2')}`);
    const info = await lab.pgbackrestInfo();
    expect(info.name).toBe('lab');
    expect(info.status).toMatchObject({ code: 2, message: 'no valid backups' });
    // The secret stays out of the inventory, which only references it.
    const secret = join(lab.dir, 'secrets', 'replication-password');
    expect((await stat(secret)).mode & 0o777).toBe(0o600);
    const inventory = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));
    expect(inventory.replication.password).toEqual({ file: secret });
    expect(inventory.hosts.db2).toMatchObject({ role: 'standby', upstream: 'db1', postgres: { port: 26001 } });
    expect(inventory.hosts.db1.vars.pgbackrest_config).toBe(join(lab.dir, 'db1', 'pgbackrest.conf'));
  });

  it('is idempotent: a second lab up changes nothing', async () => {
    const again = await lab.pgplay(['lab', 'up', '--dir', lab.dir, '--output', 'json']);
    expect(again.exitCode).toBe(0);
    const evs = events(again.stdout);
    expect(changedSteps(evs)).toEqual([]);
    const end = evs.at(-1)!;
    expect(end.type).toBe('run-end');
    expect(Object.values(end.recap!).reduce((n, r) => n + r.changed, 0)).toBe(0);
  });

  it('points pgplay run at the lab inventory when no -i is given', async () => {
    expect((await readFile(join(lab.stateDir, 'lab-inventory'), 'utf8')).trim()).toBe(join(lab.dir, 'inventory.yml'));
    const plan = await lab.pgplay(['plan', join(PLAYBOOKS, 'nightly-backup.yml'), '--output', 'json']);
    expect(plan.exitCode).toBe(0);
    expect(events(plan.stdout)[0]!.inventory).toBe(join(lab.dir, 'inventory.yml'));
  });

  it('reports status as JSON', async () => {
    const r = await lab.pgplay(['lab', 'status', '--output', 'json']);
    expect(r.exitCode).toBe(0);
    const status = JSON.parse(r.stdout);
    expect(status).toMatchObject({ dir: lab.dir, up: true, pointer: true });
    expect(status.hosts.map((h: { name: string; running: boolean }) => `${h.name}:${h.running}`)).toEqual(['db1:true', 'db2:false', 'bk1:false', 'drill1:false']);
  });

  it('refuses a contradicting rebuild and a second lab while one is up', async () => {
    const version = await lab.pgplay(['lab', 'up', '--dir', lab.dir, '--pg-version', '14']);
    expect(version.exitCode).toBe(2);
    expect(version.stderr).toContain(`the lab in ${lab.dir} was built with --pg-version 15, not 14`);
    const other = await lab.pgplay(['lab', 'up', '--dir', join(lab.dir, '..', 'other'), '--base-port', '26005']);
    expect(other.exitCode).toBe(3);
    expect(other.stderr).toContain(`a lab is already up in ${lab.dir}`);
    const bad = await lab.pgplay(['lab', 'sideways']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('lab expects one of up, down, status, got "sideways"');
  });

  it('lab down stops every server by pid and removes the lab and its pointer', async () => {
    const pid = (await lab.postmasterPid('db1'))!;
    const r = await lab.pgplay(['lab', 'down']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(`lab in ${lab.dir} removed (stopped db1)`);
    expect(await waitGone(pid)).toBe(true);
    await expect(stat(lab.dir)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(join(lab.stateDir, 'lab-inventory'))).rejects.toMatchObject({ code: 'ENOENT' });
    const again = await lab.pgplay(['lab', 'down']);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toBe(`no lab in ${lab.dir}: nothing to do`);
  });
});
