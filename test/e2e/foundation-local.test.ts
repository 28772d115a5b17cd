import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { fileTempDir } from '../support/temp-dirs.js';

const PLAYBOOK = resolve('test/e2e/fixtures/foundation/playbook.yml');

async function pgplay(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { env });
}

function jsonEvents(stdout: string) {
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; step?: string; host?: string; status?: string; recap?: Record<string, { changed: number }> });
}

describe('a playbook on a real PostgreSQL 15 cluster with the local transport', () => {
  let cluster: Cluster;
  let inventory: string;

  beforeAll(async () => {
    cluster = await startCluster({ port: 25432, auth: 'peer' });
    const dir = fileTempDir('foundation');
    inventory = join(dir, 'inventory.yml');
    await writeFile(
      inventory,
      [
        'cluster: foundation',
        'postgres:',
        '  version: 15',
        `  bindir: ${cluster.bindir}`,
        `  port: ${cluster.port}`,
        `  socketDir: ${cluster.socketDir}`,
        'connection: { transport: local, become: postgres }',
        'hosts:',
        `  db1: { address: 127.0.0.1, role: primary, pgdata: ${cluster.pgdata} }`,
        'vars: { work_mem: 8MB }',
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('converges on the first run and reports zero changes on the second', async () => {
    const first = await pgplay(['run', PLAYBOOK, '-i', inventory, '--output', 'json']);
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    const firstResults = jsonEvents(first.stdout).filter((e) => e.type === 'step-result').map((e) => `${e.step}=${e.status}`);
    expect(firstResults).toEqual([
      'conf-dir=changed',
      'include-dir=changed',
      'settings=changed',
      'table=changed',
      'row=changed',
      'count=ok',
      'check=ok',
      'reload=changed',
    ]);
    // The outcomes themselves: the file, its mode and owner, the setting live, the row.
    const conf = join(cluster.pgdata, 'conf.d', 'pgplay.conf');
    expect(await readFile(conf, 'utf8')).toBe("# Managed by pgplay (foundation); changes here are overwritten.\nwork_mem = '8MB'\napplication_name = 'db1'\n");
    const st = await stat(conf);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(Number((await execa('id', ['-u', 'postgres'])).stdout));
    expect(await cluster.psql('SHOW work_mem')).toBe('8MB');
    expect(await cluster.psql("SELECT label FROM drill_marker")).toBe('first-light');

    const second = await pgplay(['run', PLAYBOOK, '-i', inventory, '--output', 'json']);
    expect(second.exitCode).toBe(0);
    const events = jsonEvents(second.stdout);
    expect(events.filter((e) => e.type === 'step-result').map((e) => `${e.step}=${e.status}`)).toEqual([
      'conf-dir=ok',
      'include-dir=ok',
      'settings=ok',
      'table=ok',
      'row=ok',
      'count=ok',
      'check=ok',
    ]);
    expect(events.at(-1)!.recap!.db1!.changed).toBe(0);
  });

  it('plan after a drift shows the diff and changes nothing', async () => {
    const conf = join(cluster.pgdata, 'conf.d', 'pgplay.conf');
    const before = await readFile(conf, 'utf8');
    const plan = await pgplay(['plan', PLAYBOOK, '-i', inventory], {});
    expect(plan.exitCode).toBe(0);
    expect(plan.stdout).toContain('ok       db1');
    const drifted = await pgplay(['plan', PLAYBOOK, '-i', inventory, '-p', 'marker=second']);
    expect(drifted.exitCode).toBe(0);
    expect(drifted.stdout).toMatch(/STEP row: the marker row exists\n {2}changed +db1/);
    expect(await cluster.psql("SELECT count(*) FROM drill_marker")).toBe('1');
    expect(await readFile(conf, 'utf8')).toBe(before);
  });

  it('a wait whose probe query does not answer fails at its own timeout, and the host still answers the next step', async () => {
    // pg_sleep(30) IS NULL becomes true after 30 s: a probe given what is left of the 2 s wait is cut off
    // at about 2 s instead and the wait fails; before, the first probe ran its 30 s and the wait passed.
    const playbook = join(dirname(inventory), 'slow-wait.yml');
    await writeFile(
      playbook,
      [
        'name: slow-wait',
        'steps:',
        '  - id: slow',
        '    hosts: db1',
        '    wait: { sql: "SELECT pg_sleep(30) IS NULL", timeout: 2s, interval: 500ms }',
        '    ignore_errors: true',
        '  - id: after',
        '    hosts: db1',
        '    sql: { query: "SELECT pg_backend_pid() AS pid" }',
        '    register: after',
        '',
      ].join('\n'),
    );
    const r = await pgplay(['run', playbook, '-i', inventory, '--output', 'json']);
    expect(r.stderr).toBe('');
    const results = jsonEvents(r.stdout).filter((e) => e.type === 'step-result') as Array<{ step: string; status: string; error?: { message: string } }>;
    expect(results.map((e) => `${e.step}=${e.status}`)).toEqual(['slow=failed', 'after=ok']);
    expect(results[0]!.error!.message).toMatch(/^condition not met after 2s: Query read timeout/);
  });

  it('a wait whose server does not answer a new connection fails at its own timeout, not the connection\'s 30 s', async () => {
    // A stopped postmaster accepts nothing: a new connection's start-up gets no answer. The test lets it go
    // on again 5 s after the playbook stopped it. A connection attempt given what is left of the 3 s wait
    // gives up at about 3 s and the wait fails; before, the attempt waited (up to 30 s) until the server
    // answered at 5 s, and the wait passed long after its timeout.
    const postmaster = Number((await readFile(join(cluster.pgdata, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const playbook = join(dirname(inventory), 'stopped-server-wait.yml');
    await writeFile(
      playbook,
      [
        'name: stopped-server-wait',
        'steps:',
        '  - id: stop-postmaster',
        '    hosts: db1',
        `    command: { argv: [kill, -STOP, "${postmaster}"] }`,
        // Another database than the facts' connection's (which the run keeps for its SQL steps, and whose
        // backend still answers with its postmaster stopped): the wait needs a new connection.
        '  - id: wait',
        '    hosts: db1',
        '    wait: { sql: "SELECT true", database: template1, timeout: 3s, interval: 500ms }',
        '    ignore_errors: true',
        '  - id: after',
        '    hosts: db1',
        '    sql: { query: "SELECT 1 AS one" }',
        '',
      ].join('\n'),
    );
    const stopped = () => readFileSync(`/proc/${postmaster}/stat`, 'utf8').split(' ')[2] === 'T';
    const running = pgplay(['run', playbook, '-i', inventory, '--output', 'json']);
    try {
      for (let i = 0; i < 300 && !stopped(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(stopped()).toBe(true);
      await new Promise((r) => setTimeout(r, 5_000));
    } finally {
      process.kill(postmaster, 'SIGCONT');
    }
    const r = await running;
    expect(r.stderr).toBe('');
    const results = jsonEvents(r.stdout).filter((e) => e.type === 'step-result') as Array<{ step: string; status: string; error?: { message: string } }>;
    expect(results.map((e) => `${e.step}=${e.status}`)).toEqual(['stop-postmaster=changed', 'wait=failed', 'after=ok']);
    expect(results[1]!.error!.message).toMatch(/^condition not met after 3s: cannot connect to PostgreSQL .*timeout/);
  });
});
