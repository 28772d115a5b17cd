/**
 * Issue 10, "every tool a playbook will need is checked, with its version against the server's, before its
 * first change", through the CLI against a real lab (PostgreSQL 15, pgBackRest 2.45). Ports 26920-26922.
 *
 * The repository host bk1 (where nightly-backup exports the globals with pg_dumpall) gets a postgres.bindir
 * whose pg_dumpall is from PostgreSQL 11, as on a repository host with postgresql-client-11 installed. No
 * PostgreSQL 11 is installed on this machine, so that pg_dumpall is a stand-in: a script that answers
 * `--version` exactly as the real 11 binary does ("pg_dumpall (PostgreSQL) 11.22"), which is all the check
 * reads (the real tool's own `--version` line, as pgplay runs it, as the postgres user), and that fails any
 * real use the way the real 11 binary fails against a 15 server ("aborting because of server version
 * mismatch"). bk1 has no data directory, so the inventory's claims check (version and bindir of servers)
 * does not look at it: only the tools step can catch the mismatch, before archiving is turned on.
 */
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { changedSteps, createLab, labUp, results, type TestLab } from './lab-helpers.js';

const PG_CTL = '/usr/lib/postgresql/15/bin/pg_ctl';

const PG_DUMPALL_11 = `#!/bin/sh
# Stand-in for PostgreSQL 11.22's pg_dumpall: its --version line, and its refusal of a newer server.
case "$1" in
  --version|-V) echo 'pg_dumpall (PostgreSQL) 11.22'; exit 0 ;;
esac
echo 'server version: newer than 11; pg_dumpall version: 11.22' >&2
echo 'aborting because of server version mismatch' >&2
exit 1
`;

describe('a tool whose version does not fit the server (lab, PostgreSQL 15)', () => {
  let lab: TestLab;
  let scratch: string;
  let inventory: string;
  let pidBefore: number;
  let confBefore: string;
  const pgplayConf = () => join(lab.pgdata('db1'), 'conf.d', 'pgplay.conf');

  beforeAll(async () => {
    lab = await createLab(26920, 'tools');
    await labUp(lab);
    scratch = await mkdtemp(join(tmpdir(), 'pgplay-tools-scratch-'));
    await chmod(scratch, 0o755);
    const bindir = join(scratch, 'postgresql-11-bin');
    await mkdir(bindir, { mode: 0o755 });
    await writeFile(join(bindir, 'pg_dumpall'), PG_DUMPALL_11, { mode: 0o755 });

    const inv = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8')) as Record<string, any>;
    inv.hosts.bk1.postgres = { ...(inv.hosts.bk1.postgres ?? {}), bindir };
    inventory = join(scratch, 'inventory.yml');
    await writeFile(inventory, stringify(inv));

    // The primary as before its first nightly backup: archiving off. A backup that went ahead would turn
    // it on and restart the primary.
    await writeFile(pgplayConf(), (await readFile(pgplayConf(), 'utf8')).replace(/^archive_mode = on$/m, 'archive_mode = off'));
    const r = await execa('runuser', ['-u', 'postgres', '--', PG_CTL, 'restart', '-D', lab.pgdata('db1'), '-m', 'fast', '-w', '-l', join(lab.dir, 'db1', 'server.log')], {
      cwd: '/',
      reject: false,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await lab.psql('db1', 'SHOW archive_mode')).toBe('off');
    pidBefore = (await lab.postmasterPid('db1'))!;
    confBefore = await readFile(pgplayConf(), 'utf8');
  }, 300_000);

  afterAll(async () => {
    await lab?.down();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('nightly-backup refuses (exit 3) at its tools step naming pg_dumpall, its version and the server\'s, before any change', async () => {
    const r = await lab.run('nightly-backup.yml', ['-i', inventory, '--yes']);
    expect(r.exitCode, r.stdout.slice(-3000) + r.stderr).toBe(3);
    expect(results(r.events)).toContain('pgbackrest-tools/pg-dumpall@bk1=failed');
    const end = r.events.findLast((e) => e.type === 'run-end')!;
    expect(end.error).toMatchObject({ code: 'GUARD' });
    expect(end.error!.message).toContain('pg_dumpall on bk1 is from PostgreSQL 11.22, the server runs 15');
    // Nothing changed: no step changed anything, archiving is still off, the primary was not restarted.
    expect(changedSteps(r.events)).toEqual([]);
    expect(await lab.psql('db1', 'SHOW archive_mode')).toBe('off');
    expect(await lab.postmasterPid('db1')).toBe(pidBefore);
    expect(await readFile(pgplayConf(), 'utf8')).toBe(confBefore);
  }, 300_000);
});
