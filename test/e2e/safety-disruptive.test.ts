/**
 * Issue 10, findings 7, 8, 10 and 12, through the CLI against one real lab (PostgreSQL 15, pgBackRest
 * 2.45): the inventory's claims are checked against the servers before anything changes; the tools a
 * backup needs are checked before archiving is turned on; restarting the primary for a changed setting
 * is confirmed (and shown by plan) before the settings are written; the restarted server starts with a
 * clean environment and keeps logging where it did; and the cluster lock lives on the cluster's hosts,
 * so operators with different state directories exclude each other.
 */
import { execa, type ResultPromise } from 'execa';
import { chmod, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { changedSteps, CLI, createLab, eventually, events, labUp, PLAYBOOKS, results, type RunResult, type TestLab } from './lab-helpers.js';

const PG_CTL = '/usr/lib/postgresql/15/bin/pg_ctl';

describe('disruptive steps, tools, claims and the cluster lock (lab, PostgreSQL 15, pgBackRest 2.45)', () => {
  let lab: TestLab;
  let scratch: string;
  let inventoryFile: string;
  /** Where the test starts db1 itself: pgplay's restart must keep the server logging there. */
  let serverLog: string;

  beforeAll(async () => {
    lab = await createLab(26610, 'disruptive');
    await labUp(lab);
    scratch = await mkdtemp(join(tmpdir(), 'pgplay-disruptive-scratch-'));
    // The postgres user runs commands from here (the PATH of finding 8) and reads playbooks.
    await chmod(scratch, 0o755);
    inventoryFile = join(lab.dir, 'inventory.yml');
    serverLog = join(lab.dir, 'db1', 'server.log');
  });

  afterAll(async () => {
    await lab?.down();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  /** A copy of the lab's inventory with `change` applied. */
  async function inventoryVariant(name: string, change: (inv: Record<string, any>) => void): Promise<string> {
    const inv = parse(await readFile(inventoryFile, 'utf8')) as Record<string, any>;
    change(inv);
    const file = join(scratch, name);
    await writeFile(file, stringify(inv));
    return file;
  }

  const showArchiveMode = () => lab.psql('db1', 'SHOW archive_mode');
  const pgplayConf = () => join(lab.pgdata('db1'), 'conf.d', 'pgplay.conf');

  describe('finding 12: facts check the claims', () => {
    it('a PostgreSQL 17 inventory against the 15 server: plan and run refuse (exit 3) naming the host, the claim and the fact', async () => {
      const inv17 = await inventoryVariant('inventory-17.yml', (inv) => {
        inv.postgres.version = 17;
      });
      const plan = await lab.pgplay(['plan', join(PLAYBOOKS, 'nightly-backup.yml'), '-i', inv17]);
      expect(plan.exitCode, plan.stdout + plan.stderr).toBe(3);
      expect(plan.stderr).toMatch(/db1: the inventory says PostgreSQL 17 \(postgres\.version\), but the server runs 15 \(server_version_num 15\d{4}\)/);

      const pid = await lab.postmasterPid('db1');
      const run = await lab.run('nightly-backup.yml', ['-i', inv17, '--yes']);
      expect(run.exitCode).toBe(3);
      expect(changedSteps(run.events)).toEqual([]);
      expect(await lab.postmasterPid('db1')).toBe(pid);
    });

    it('a bindir without PostgreSQL binaries of the claimed version is refused before any step (exit 3)', async () => {
      const bad = join(scratch, 'no-such-bindir');
      const inv = await inventoryVariant('inventory-bindir.yml', (i) => {
        i.postgres.bindir = bad;
      });
      const plan = await lab.pgplay(['plan', join(PLAYBOOKS, 'nightly-backup.yml'), '-i', inv]);
      expect(plan.exitCode, plan.stdout + plan.stderr).toBe(3);
      expect(plan.stderr).toContain(`db1: postgres.bindir ${bad} holds no pg_ctl`);
    });

    it('backup.fromStandby without backup.repoHost cannot take effect: a validation error (exit 2)', async () => {
      const inv = await inventoryVariant('inventory-fromstandby.yml', (i) => {
        i.backup.fromStandby = true;
        delete i.backup.repoHost;
      });
      const r = await lab.pgplay(['validate', inv]);
      expect(r.exitCode).toBe(2);
      expect(r.stdout + r.stderr).toMatch(/fromStandby.*repoHost/);
    });
  });

  describe('findings 7 and 8: a restart of the primary and the tools are settled before the first change', () => {
    let pidBefore: number;
    let confBefore: string;

    beforeAll(async () => {
      // The primary as a user may have it before the first nightly backup: archiving off, started by
      // its owner with its own log file.
      const conf = (await readFile(pgplayConf(), 'utf8')).replace(/^archive_mode = on$/m, 'archive_mode = off');
      await writeFile(pgplayConf(), conf);
      const r = await execa('runuser', ['-u', 'postgres', '--', PG_CTL, 'restart', '-D', lab.pgdata('db1'), '-m', 'fast', '-w', '-l', serverLog], {
        cwd: '/',
        reject: false,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await showArchiveMode()).toBe('off');
      pidBefore = (await lab.postmasterPid('db1'))!;
      confBefore = await readFile(pgplayConf(), 'utf8');
    });

    it('finding 8: pgBackRest missing from the PATH pgplay runs it with refuses (exit 3) before archive_mode changes or the primary restarts', async () => {
      // pgplay's PATH without pgbackrest: every other command of /usr/bin and /usr/sbin is there.
      const bin = join(scratch, 'bin-without-pgbackrest');
      await mkdir(bin);
      for (const dir of ['/usr/bin', '/usr/sbin']) {
        for (const name of await readdir(dir)) {
          if (name === 'pgbackrest') continue;
          await symlink(join(dir, name), join(bin, name)).catch(() => undefined);
        }
      }
      const r = await execa(process.execPath, [CLI, 'run', join(PLAYBOOKS, 'nightly-backup.yml'), '--output', 'json', '--yes'], {
        reject: false,
        env: { ...lab.env, PATH: bin },
        cwd: scratch,
        timeout: 300_000,
      });
      const evs = events(r.stdout);
      expect(r.exitCode, r.stdout + r.stderr).toBe(3);
      expect(evs.at(-1)!.error!.message).toMatch(/^pgbackrest is not installed on db1 \(not found on the PATH pgplay runs it with, as postgres\)/);
      expect(changedSteps(evs)).toEqual([]);
      expect(await showArchiveMode()).toBe('off');
      expect(await lab.postmasterPid('db1')).toBe(pidBefore);
      expect(await readFile(pgplayConf(), 'utf8')).toBe(confBefore);
    });

    it("finding 8: pgBackRest that pgplay finds but the server's PATH does not (archive_command runs there) refuses (exit 3) before archive_mode changes", async () => {
      // pgplay runs in a mount namespace of its own where /usr/bin/pgbackrest is masked (a bind mount of
      // /dev/null: this machine's /usr/bin is untouched) and its own PATH holds a copy: pgplay finds
      // pgbackrest, a server it would start (PATH /usr/local/bin:/usr/bin:/bin) would not.
      const bin = join(scratch, 'pgbackrest-elsewhere');
      await mkdir(bin, { recursive: true });
      await execa('install', ['-m', '0755', '/usr/bin/pgbackrest', join(bin, 'pgbackrest')]);
      const masked = 'mount --bind /dev/null /usr/bin/pgbackrest; exec "$@"';
      const r = await execa(
        'unshare',
        ['--mount', '--propagation', 'private', '--', '/bin/sh', '-ec', masked, 'pgplay-masked', process.execPath, CLI, 'run', join(PLAYBOOKS, 'nightly-backup.yml'), '--output', 'json', '--yes'],
        { reject: false, env: { ...lab.env, PATH: `${bin}:${process.env.PATH}` }, cwd: scratch, timeout: 300_000 },
      );
      const evs = events(r.stdout);
      expect(r.exitCode, r.stdout + r.stderr).toBe(3);
      expect(results(evs)).toContain('pgbackrest-tools/pgbackrest@db1=failed');
      expect(evs.at(-1)!.error!.message).toContain(
        'pgbackrest is not installed on db1 where its PostgreSQL server finds commands (PATH /usr/local/bin:/usr/bin:/bin): archive_command would fail on every WAL segment',
      );
      expect(changedSteps(evs)).toEqual([]);
      expect(await showArchiveMode()).toBe('off');
      expect(await lab.postmasterPid('db1')).toBe(pidBefore);
      expect(await readFile(pgplayConf(), 'utf8')).toBe(confBefore);
    });

    it('finding 7: plan shows the restart and why; without --yes and without a terminal the run refuses (exit 3) before changing anything', async () => {
      const plan = await lab.pgplay(['plan', join(PLAYBOOKS, 'nightly-backup.yml'), '--output', 'json']);
      expect(plan.exitCode, plan.stderr).toBe(0);
      const planned = events(plan.stdout).filter((e) => e.type === 'step-result' && e.host === 'db1');
      expect(planned.find((e) => e.step === 'archiving-restart')).toMatchObject({ status: 'changed', msg: 'would restart db1: archive_mode changed' });

      const r = await lab.run('nightly-backup.yml');
      expect(r.exitCode, r.stdout + r.stderr).toBe(3);
      expect(r.events.at(-1)!.error!.message).toContain('restart db1: archive_mode changed');
      expect(changedSteps(r.events)).toEqual([]);
      expect(await showArchiveMode()).toBe('off');
      expect(await lab.postmasterPid('db1')).toBe(pidBefore);
      expect(await readFile(pgplayConf(), 'utf8')).toBe(confBefore);
    });

    it('with --yes the primary restarts once, with archiving on, a clean environment, and its log where it was', async () => {
      const r = await lab.run('nightly-backup.yml', ['--yes']);
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      expect(results(r.events)).toContain('archiving-restart@db1=changed');
      expect(await showArchiveMode()).toBe('on');
      const pid = (await lab.postmasterPid('db1'))!;
      expect(pid).not.toBe(pidBefore);
      const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').filter((l) => l !== '');
      const names = environ.map((l) => l.slice(0, l.indexOf('=')));
      // PG_GRANDPARENT_PID is pg_ctl's, PGLOCALEDIR and PGSYSCONFDIR PostgreSQL's own (set_pglocale_pgservice).
      expect(names.filter((n) => !/^(PATH|PGDATA|LANG|LC_[A-Z_]+|PWD|PG_GRANDPARENT_PID|PGLOCALEDIR|PGSYSCONFDIR)$/.test(n))).toEqual([]);
      expect(environ).toContain('PATH=/usr/local/bin:/usr/bin:/bin');
      expect(await readlink(`/proc/${pid}/fd/2`)).toBe(serverLog);
      expect((await lab.pgbackrestInfo()).backup.map((b) => b.type)).toEqual(['full']);
    });
  });

  describe('finding 10: the lock travels with the cluster', () => {
    it('an operator with another state directory is refused (exit 3) while a run holds the cluster; the host lock goes with the run', async () => {
      const gate = join(scratch, 'gate');
      const holderPlaybook = join(scratch, 'holder.yml');
      await writeFile(
        holderPlaybook,
        ['name: holder', 'steps:', '  - id: hold', '    hosts: primary', `    command: { shell: "until [ -e '${gate}' ]; do sleep 0.1; done" }`, ''].join('\n'),
      );
      const quickPlaybook = join(scratch, 'quick.yml');
      await writeFile(quickPlaybook, ['name: quick', 'steps:', '  - id: touch', '    hosts: primary', '    command: { argv: ["true"] }', ''].join('\n'));
      const otherState = join(scratch, 'operator-b-state');
      const operatorB = () =>
        execa(process.execPath, [CLI, 'run', quickPlaybook, '-i', inventoryFile, '--output', 'json'], {
          reject: false,
          env: { ...lab.env, PGPLAY_STATE_DIR: otherState },
          cwd: scratch,
          timeout: 300_000,
        });

      const holder: ResultPromise = execa(process.execPath, [CLI, 'run', holderPlaybook, '-i', inventoryFile, '--output', 'json'], {
        reject: false,
        env: lab.env,
        cwd: scratch,
        timeout: 300_000,
      });
      let out = '';
      holder.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      try {
        expect(await eventually(async () => out, (o) => o.includes('"type":"step-start"'))).toContain('"step":"hold"');
        const second = await operatorB();
        const holderRun = (events(out).find((e) => e.type === 'run-start') as { runId?: string }).runId!;
        expect(second.exitCode, second.stdout + second.stderr).toBe(3);
        // With --output json the refusal is a JSON error event on stdout.
        expect(second.stdout + second.stderr).toContain(`cluster \\"lab\\" is locked on db1 by run ${holderRun} (pid ${holder.pid}`);
        expect(results(events(second.stdout))).toEqual([]);
        const hostLock = join(lab.dir, 'db1', '.pgplay', 'locks', 'lab.lock');
        expect(JSON.parse(await readFile(hostLock, 'utf8'))).toMatchObject({ runId: holderRun, pid: holder.pid, operator: 'root' });

        await writeFile(gate, '');
        const done = (await holder) as unknown as RunResult;
        expect(done.exitCode, done.stdout + done.stderr).toBe(0);
        await expect(readFile(hostLock)).rejects.toThrow(/ENOENT/);
        const after = await operatorB();
        expect(after.exitCode, after.stdout + after.stderr).toBe(0);
        expect(results(events(after.stdout))).toEqual(['touch@db1=changed']);
      } finally {
        await writeFile(gate, '');
        await holder;
      }
    });
  });
});
