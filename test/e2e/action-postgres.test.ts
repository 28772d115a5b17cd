/**
 * The postgres action through the real engine (runPlaybook in-process, local transport, real facts)
 * on a real PostgreSQL 15: each state converges and a second run reports ok; a failed start names the
 * bad setting from the startup log; guards refuse a primary stop and a promotion (exit 3).
 */
import { appendFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/engine/events.js';
import { runPlaybook } from '../../src/app/run-playbook.js';
import { pidAlive, readPostmasterPid, startCluster, stopAllClusters, type Cluster } from '../support/cluster.js';

type StepResult = Extract<RunEvent, { type: 'step-result' }>;

interface Run {
  exitCode: number;
  results: StepResult[];
  /** "step=status" in order, the shape most assertions read; a failure carries its message so a diff shows why. */
  statuses: string[];
  end: Extract<RunEvent, { type: 'run-end' }>;
}

async function run(dir: string, steps: string, opts: { yes?: boolean; check?: boolean } = {}): Promise<Run> {
  const playbook = join(dir, `playbook-${Math.random().toString(36).slice(2)}.yml`);
  await writeFile(playbook, `name: test\nsteps:\n${steps}`);
  const events: RunEvent[] = [];
  const outcome = await runPlaybook({
    playbookFile: playbook,
    inventoryFile: join(dir, 'inventory.yml'),
    params: {},
    check: opts.check ?? false,
    diff: true,
    yes: opts.yes ?? false,
    timeout: '2m',
    onEvent: (e) => events.push(e),
  });
  const results = events.filter((e): e is StepResult => e.type === 'step-result');
  const end = events.find((e): e is Extract<RunEvent, { type: 'run-end' }> => e.type === 'run-end')!;
  return { exitCode: outcome.exitCode, results, statuses: results.map((r) => `${r.step}=${r.status}${r.error ? ` (${r.error.code}: ${r.error.message})` : ''}`), end };
}

let cluster: Cluster;
let dir: string;

beforeAll(async () => {
  // initdb only: the tests below start, stop and restart it through the action.
  cluster = await startCluster({ port: 25500, auth: 'peer', noStart: true });
  dir = cluster.dir;
  await writeInventory(cluster.pgdata, cluster.port);
});

afterAll(async () => {
  await stopAllClusters();
});

async function writeInventory(pgdata: string, port: number) {
  await writeFile(
    join(dir, 'inventory.yml'),
    [
      'cluster: actions',
      'postgres:',
      '  version: 15',
      `  bindir: ${cluster.bindir}`,
      `  port: ${port}`,
      `  socketDir: ${cluster.socketDir}`,
      'connection: { transport: local, become: postgres }',
      'hosts:',
      `  db1: { address: 127.0.0.1, role: primary, pgdata: ${pgdata} }`,
      '',
    ].join('\n'),
  );
}

describe('postgres: started / restarted / reloaded / stopped on a real PostgreSQL 15', () => {
  it('starts a stopped cluster, writing the startup log, and a second start is ok', async () => {
    expect(await readPostmasterPid(cluster.pgdata)).toBe(0);
    const first = await run(dir, '  - { id: start, hosts: db1, postgres: { state: started } }\n');
    expect(first.statuses).toEqual(['start=changed']);
    expect(first.exitCode).toBe(0);
    const pid = await readPostmasterPid(cluster.pgdata);
    expect(pidAlive(pid)).toBe(true);
    expect(first.results[0]!.msg).toBe(`started (pid ${pid})`);
    expect(await cluster.psql('select 1')).toBe('1');
    // pg_ctl -l: the server's early output went to the default startup log, owned by postgres.
    const log = join(cluster.pgdata, 'log', 'pgplay-startup.log');
    expect(await readFile(log, 'utf8')).toMatch(/database system is ready to accept connections/);

    const second = await run(dir, '  - { id: start, hosts: db1, postgres: { state: started } }\n');
    expect(second.statuses).toEqual(['start=ok']);
    expect(second.results[0]!.msg).toBe(`running (pid ${pid})`);
    expect(await readPostmasterPid(cluster.pgdata)).toBe(pid);
  });

  it('reloads a running server and names the settings that need a restart', async () => {
    const conf = join(cluster.pgdata, 'postgresql.conf');
    const original = await readFile(conf, 'utf8');
    try {
      await appendFile(conf, "work_mem = '7MB'\nshared_buffers = '40MB'\n");
      const r = await run(dir, '  - { id: reload, hosts: db1, postgres: { state: reloaded } }\n');
      expect(r.statuses).toEqual(['reload=changed']);
      expect(r.results[0]!.msg).toBe('reloaded; a restart is needed for shared_buffers');
      await expect.poll(() => cluster.psql('show work_mem'), { timeout: 5000 }).toBe('7MB');

      // A value the server cannot read: the reload happens, the step fails naming file, line and setting.
      await appendFile(conf, "work_mem = 'lots'\n");
      const bad = await run(dir, '  - { id: reload, hosts: db1, postgres: { state: reloaded } }\n');
      expect(bad.exitCode).toBe(1);
      expect(bad.results[0]!.error?.code).toBe('STEP_FAILED');
      const lines = (await readFile(conf, 'utf8')).split('\n');
      const line = lines.findIndex((l) => l === "work_mem = 'lots'") + 1;
      expect(bad.results[0]!.msg).toBe(`reloaded db1, but the server ignores settings it cannot read:\n${conf}:${line}: work_mem = 'lots' is not accepted`);
    } finally {
      await writeFile(conf, original);
      await run(dir, '  - { id: reload, hosts: db1, postgres: { state: reloaded } }\n');
    }
  });

  it('restarts a running server every time (new postmaster), in the mode asked; a primary only when confirmed', async () => {
    const before = await readPostmasterPid(cluster.pgdata);
    const unconfirmed = await run(dir, '  - { id: restart, hosts: db1, postgres: { state: restarted, mode: fast } }\n');
    expect(unconfirmed.exitCode).toBe(3);
    expect(await readPostmasterPid(cluster.pgdata)).toBe(before);
    const r = await run(dir, '  - { id: restart, hosts: db1, postgres: { state: restarted, mode: fast } }\n', { yes: true });
    expect(r.statuses).toEqual(['restart=changed']);
    const after = await readPostmasterPid(cluster.pgdata);
    expect(after).not.toBe(before);
    // The pid file goes a moment before the process itself.
    await expect.poll(() => pidAlive(before), { timeout: 10_000 }).toBe(false);
    expect(pidAlive(after)).toBe(true);
    expect(r.results[0]!.msg).toBe(`restarted (mode fast, pid ${after})`);
  });

  it('refuses to promote a primary (exit 3), also under plan', async () => {
    for (const check of [false, true]) {
      const r = await run(dir, '  - { id: promote, hosts: db1, postgres: { state: promoted } }\n', { yes: true, check });
      expect(r.exitCode).toBe(3);
      expect(r.end.status).toBe('refused');
      expect(r.results[0]!.error).toMatchObject({ code: 'GUARD', message: 'refusing to promote db1: it is not in recovery' });
    }
    expect(await cluster.psql('select pg_is_in_recovery()')).toBe('f');
  });

  it('refuses to stop a running primary without allow_primary, and asks for confirmation with it', async () => {
    const pid = await readPostmasterPid(cluster.pgdata);
    const refused = await run(dir, '  - { id: stop, hosts: db1, postgres: { state: stopped } }\n', { yes: true });
    expect(refused.exitCode).toBe(3);
    expect(refused.results[0]!.error).toMatchObject({ code: 'GUARD', message: 'refusing to stop db1: it is a running primary (not in recovery)' });

    // allow_primary makes the step destructive: without --yes and without a terminal it is not confirmed.
    const unconfirmed = await run(dir, '  - { id: stop, hosts: db1, postgres: { state: stopped, allow_primary: true } }\n');
    expect(unconfirmed.exitCode).toBe(3);
    expect(unconfirmed.results[0]!.error?.message).toMatch(/^not confirmed: /);
    expect(pidAlive(pid)).toBe(true);

    const stopped = await run(dir, '  - { id: stop, hosts: db1, postgres: { state: stopped, allow_primary: true, mode: fast } }\n', { yes: true });
    expect(stopped.statuses).toEqual(['stop=changed']);
    expect(stopped.results[0]!.msg).toBe('stopped (mode fast)');
    await expect.poll(() => pidAlive(pid), { timeout: 10_000 }).toBe(false);

    // Nothing to stop: ok, and no guard (there is no running primary to protect).
    const again = await run(dir, '  - { id: stop, hosts: db1, postgres: { state: stopped } }\n');
    expect(again.statuses).toEqual(['stop=ok']);
    expect(again.results[0]!.msg).toBe('not running');
  });

  it('a start that fails on a bad setting names it from the startup log (exit 1)', async () => {
    const conf = join(cluster.pgdata, 'postgresql.conf');
    const original = await readFile(conf, 'utf8');
    try {
      await appendFile(conf, "shared_buffers = 'plenty'\n");
      const r = await run(dir, '  - { id: start, hosts: db1, postgres: { state: started, wait_timeout: 30s } }\n');
      expect(r.exitCode).toBe(1);
      expect(r.results[0]!.error?.code).toBe('STEP_FAILED');
      expect(r.results[0]!.msg).toMatch(/^PostgreSQL did not start on db1:\n/);
      expect(r.results[0]!.msg).toContain('invalid value for parameter "shared_buffers": "plenty"');
      expect(r.results[0]!.error?.hint).toBe(`the server's startup log is ${join(cluster.pgdata, 'log', 'pgplay-startup.log')}`);
      expect(await readPostmasterPid(cluster.pgdata)).toBe(0);
    } finally {
      await writeFile(conf, original);
    }
    // The earlier failure stays in the log, but a good start is judged on its own lines.
    const ok = await run(dir, '  - { id: start, hosts: db1, postgres: { state: started } }\n');
    expect(ok.statuses).toEqual(['start=changed']);
    const stop = await run(dir, '  - { id: stop, hosts: db1, postgres: { state: stopped, allow_primary: true } }\n', { yes: true });
    expect(stop.statuses).toEqual(['stop=changed']);
  });

  it('restarted on a stopped server starts it', async () => {
    const r = await run(dir, '  - { id: restart, hosts: db1, postgres: { state: restarted } }\n');
    expect(r.statuses).toEqual(['restart=changed']);
    expect(r.results[0]!.msg).toMatch(/^started \(pid \d+\)$/);
    const reload = await run(dir, '  - { id: reload, hosts: db1, postgres: { state: reloaded } }\n');
    expect(reload.results[0]!.msg).toBe('reloaded');
    await run(dir, '  - { id: stop, hosts: db1, postgres: { state: stopped, allow_primary: true } }\n', { yes: true });
    const skipped = await run(dir, '  - { id: reload, hosts: db1, postgres: { state: reloaded } }\n');
    expect(skipped.statuses).toEqual(['reload=skipped']);
  });
});

describe('postgres: initialized', () => {
  it('runs initdb into a missing directory with the options given, then reports ok', async () => {
    const pgdata = join(dir, 'fresh');
    await writeInventory(pgdata, 25501);
    try {
      const plan = await run(dir, '  - { id: init, hosts: db1, postgres: { state: initialized } }\n', { check: true });
      expect(plan.statuses).toEqual(['init=changed']);
      expect(plan.results[0]!.msg).toBe(`would run initdb in ${pgdata} (created)`);
      await expect(stat(pgdata)).rejects.toThrow();

      const steps = '  - id: init\n    hosts: db1\n    postgres: { state: initialized, initdb: { encoding: UTF8, locale: C, data_checksums: true, auth_local: peer, auth_host: scram-sha-256 } }\n';
      const first = await run(dir, steps);
      expect(first.statuses).toEqual(['init=changed']);
      expect(first.results[0]!.msg).toBe(`initialized a PostgreSQL 15 cluster in ${pgdata}`);
      expect((await readFile(join(pgdata, 'PG_VERSION'), 'utf8')).trim()).toBe('15');
      const st = await stat(pgdata);
      expect(st.mode & 0o777).toBe(0o700);
      const hba = await readFile(join(pgdata, 'pg_hba.conf'), 'utf8');
      expect(hba).toMatch(/^local\s+all\s+all\s+peer$/m);
      expect(hba).toMatch(/^host\s+all\s+all\s+127\.0\.0\.1\/32\s+scram-sha-256$/m);
      // The options really reached initdb: checksums are on in pg_control.
      const { execa } = await import('execa');
      const control = await execa(join(cluster.bindir, 'pg_controldata'), ['-D', pgdata], { env: { LC_ALL: 'C' } });
      expect(control.stdout).toMatch(/Data page checksum version:\s+1/);

      const second = await run(dir, steps);
      expect(second.statuses).toEqual(['init=ok']);
      expect(second.results[0]!.msg).toBe(`${pgdata} holds a PostgreSQL 15 cluster`);
    } finally {
      await rm(pgdata, { recursive: true, force: true });
      await writeInventory(cluster.pgdata, cluster.port);
    }
  });

  it('refuses a directory that holds other files (exit 3) and leaves them alone', async () => {
    const pgdata = join(dir, 'occupied');
    await mkdir(pgdata);
    await writeFile(join(pgdata, 'notes.txt'), 'keep me\n');
    await writeInventory(pgdata, 25502);
    try {
      const r = await run(dir, '  - { id: init, hosts: db1, postgres: { state: initialized } }\n');
      expect(r.exitCode).toBe(3);
      expect(r.results[0]!.error).toMatchObject({
        code: 'GUARD',
        message: `refusing to initdb ${pgdata} on db1: it is not empty and holds no cluster (notes.txt)`,
      });
      expect(await readFile(join(pgdata, 'notes.txt'), 'utf8')).toBe('keep me\n');
    } finally {
      await rm(pgdata, { recursive: true, force: true });
      await writeInventory(cluster.pgdata, cluster.port);
    }
  });

  it('rejects options that do not belong to the state before touching anything (exit 2)', async () => {
    const r = await run(dir, '  - { id: start, hosts: db1, postgres: { state: started, initdb: { encoding: UTF8 } } }\n');
    expect(r.exitCode).toBe(2);
    // Refused by the run's pre-flight, before any step: no step result, the run's error names step and host.
    expect(r.results).toEqual([]);
    expect(r.end.error?.message).toContain('step start on db1: postgres: initdb does not apply to state started');
    expect(await readPostmasterPid(cluster.pgdata)).toBe(0);
  });
});
