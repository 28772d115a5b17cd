import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { factsArgv, parseFacts } from '../../src/postgres/facts.js';
import { identityArgv, parseIdentities } from '../../src/postgres/identity.js';
import type { Host } from '../../src/model/inventory.js';

/*
 * The facts probe and the identity read run around every start, stop and restore (the one-primary
 * invariant, the guards, the engine's refresh): 16 probes and 9 identity reads in a standby rebuild. Each
 * helper process they start (head, sed, grep, cat, readlink) cost 3-10 ms, more under load. Here both
 * scripts run for real with a PATH that holds nothing but `stat` (the identity's one outside helper,
 * which logs its calls too: one for all the paths a read finds) and a bindir of stand-ins for
 * pg_controldata, pg_ctl and psql that log their calls: every value must still be read, and the bindir's
 * tools must be the only programs that ran.
 */
let dir: string;
let pgdata: string;
let bindir: string;
let pathDir: string;
const ranLog = () => join(dir, 'ran.log');

const tool = (name: string, body: string) => `#!/bin/sh\nprintf '%s\\n' '${name}' >> '${join('DIR', 'ran.log')}'\n${body}\n`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-probe-'));
  pgdata = join(dir, 'data');
  bindir = join(dir, 'bin');
  pathDir = join(dir, 'path');
  await mkdir(join(pgdata, 'global'), { recursive: true });
  await mkdir(bindir);
  await mkdir(pathDir);
  await writeFile(join(pgdata, 'PG_VERSION'), '15\n');
  await writeFile(join(pgdata, 'global', 'pg_control'), Buffer.alloc(64));
  // postmaster.pid: pid, data directory, start time, port, socket directory (what the probe reads).
  await writeFile(join(pgdata, 'postmaster.pid'), `${process.pid}\n${pgdata}\n1700000000\n25432\n${dir}/run\n127.0.0.1\n`);
  const tools: Record<string, string> = {
    pg_controldata: [
      "printf '%s\\n' 'pg_control version number:            1300'",
      "printf '%s\\n' 'Database system identifier:           7312345678901234567'",
      "printf '%s\\n' 'Database cluster state:               in archive recovery'",
      "printf '%s\\n' \"Latest checkpoint's TimeLineID:       3\"",
      "printf '%s\\n' \"Latest checkpoint's PrevTimeLineID:   2\"",
    ].join('\n'),
    pg_ctl: `printf '%s\\n' "pg_ctl: server is running (PID: ${process.pid})" '/usr/lib/postgresql/15/bin/postgres "-D" "x"'`,
    // The port and socket the probe passes must be postmaster.pid's, not the inventory's.
    psql: [
      'case " $* " in *" -h DIR/run -p 25432 "*) ;; *) echo "psql: wrong server: $*" >&2; exit 2 ;; esac',
      'case " $* " in *" -U postgres "*) ;; *) echo "psql: FATAL:  role does not exist" >&2; exit 2 ;; esac',
      "printf '%s\\n' 'sql.version_num=150010' 'sql.data_directory=DIR/data' 'sql.port=25432' 'sql.in_recovery=true'",
      "printf '%s\\n' 'sql.system_identifier=7312345678901234567' 'sql.timeline=3' 'sql.current_lsn=' 'sql.receive_lsn=0/3000060'",
      "printf '%s\\n' 'sql.replay_lsn=0/3000060' 'sql.replay_paused=false'",
      // pg_control and the version as the server reads them (facts.ts CONTROL_SQL): no pg_controldata then.
      "printf '%s\\n' 'sql.server_version=15.10' 'sqlcontrol.system_identifier=7312345678901234567'",
      "printf '%s\\n' 'sqlcontrol.state=in archive recovery' 'sqlcontrol.timeline=3'",
    ].join('\n'),
  };
  for (const [name, body] of Object.entries(tools)) {
    await writeFile(join(bindir, name), tool(name, body).replaceAll('DIR', dir));
    await chmod(join(bindir, name), 0o755);
  }
  await writeFile(join(pathDir, 'stat'), tool('stat', 'exec /usr/bin/stat "$@"').replaceAll('DIR', dir));
  await chmod(join(pathDir, 'stat'), 0o755);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const host = (superuser = 'postgres'): Host =>
  ({
    name: 'db2',
    pgdata,
    postgres: { bindir, port: 5432, socketDir: '/nonexistent', superuser },
  }) as unknown as Host;

/** pg_ctl refuses root: as root the script leaves pg_ctl status to pg_ctl (pg-ctl-status.ts), else it answers itself. */
const pgCtlAsRoot = process.geteuid?.() === 0 ? ['pg_ctl'] : [];

/** The identity script run for real, with nothing but `pathDir`'s programs on its PATH (default: the logging stat). */
async function readIdentity(paths: string[], whole?: number, path = pathDir) {
  const [cmd, ...args] = identityArgv(bindir, paths, whole);
  const r = await execa(cmd!, args, { reject: false, env: { PATH: path }, extendEnv: false });
  return { r, ids: parseIdentities(r.stdout, paths) };
}

/**
 * A PATH directory whose stat answers the identity script's batch (its `%n|` format) with `lines`, as if
 * paths had appeared or vanished around it, and runs the real stat for everything else; logged as 'stat'.
 */
async function statAnswering(name: string, lines: string[]): Promise<string> {
  const path = join(dir, name);
  await mkdir(path);
  const answer = lines.map((l) => `"${l}"`).join(' ');
  await writeFile(join(path, 'stat'), tool('stat', `case " $* " in *" %n|"*) printf '%s\\n' ${answer}; exit 0 ;; esac\nexec /usr/bin/stat "$@"`).replaceAll('DIR', dir));
  await chmod(join(path, 'stat'), 0o755);
  return path;
}

async function ran(): Promise<string[]> {
  const text = await readFile(ranLog(), 'utf8').catch(() => '');
  await rm(ranLog(), { force: true });
  return text.split('\n').filter(Boolean);
}

describe('the probes start no helper processes beside the bindir tools', () => {
  it('facts: postmaster.pid, pg_control, pg_ctl status and SQL all read with only pg_ctl and psql run', async () => {
    const [cmd, ...args] = factsArgv(host(), { host: false });
    const r = await execa(cmd!, args, { reject: false, env: { PATH: pathDir }, extendEnv: false });
    expect(r.stderr).toBe('');
    const facts = parseFacts(r.stdout);
    expect(facts).toMatchObject({
      pgdata_present: true,
      pgdata_version: 15,
      running: true,
      pid: process.pid,
      cluster_state: 'in archive recovery',
      in_recovery: true,
      server_version_num: 150010,
      system_identifier: '7312345678901234567',
      timeline: 3,
      replay_lsn: '0/3000060',
      replay_paused: false,
    });
    expect(facts.error).toBeUndefined();
    expect(r.stdout).toContain(`postmaster_pid=${process.pid}\npid_alive=1\n`);
    expect(await ran()).toEqual([...pgCtlAsRoot, 'psql']);
  });

  it('facts: a server that does not answer leaves pg_control to pg_controldata', async () => {
    const [cmd, ...args] = factsArgv(host('no_such_role'), { host: false });
    const r = await execa(cmd!, args, { reject: false, env: { PATH: pathDir }, extendEnv: false });
    expect(r.stderr).toBe('');
    const facts = parseFacts(r.stdout);
    expect(facts).toMatchObject({ running: true, cluster_state: 'in archive recovery', system_identifier: '7312345678901234567', timeline: 3 });
    expect(facts.error).toMatch(/^psql: .*role does not exist/);
    expect(await ran()).toEqual([...pgCtlAsRoot, 'psql', 'pg_controldata']);
  });

  it('identity: a cluster directory read with only stat and pg_controldata run', async () => {
    const paths = [pgdata, join(dir, 'missing')];
    const { r, ids: [data, missing] } = await readIdentity(paths);
    expect(r.stderr).toBe('');
    expect(data).toMatchObject({
      known: true,
      exists: true,
      directory: true,
      real: pgdata,
      pgVersion: 15,
      control: true,
      systemIdentifier: '7312345678901234567',
      clusterState: 'in archive recovery',
      running: true,
      pid: process.pid,
    });
    expect(data!.key).toMatch(/^[0-9a-f-]+:\d+:\d+$/);
    expect(missing).toMatchObject({ known: true, exists: false });
    // One stat for the paths that are there, then pg_controldata; a path not there is asked alone (stat says why).
    expect(await ran()).toEqual(['stat', 'pg_controldata', 'stat']);
  });

  it("identity: other hosts' directories are read for which directory each is, without pg_controldata", async () => {
    // Another cluster's directory (as a guard reads the other inventory hosts' PGDATA): its key is what counts.
    const other = join(dir, 'other');
    await mkdir(join(other, 'global'), { recursive: true });
    await writeFile(join(other, 'PG_VERSION'), '15\n');
    await writeFile(join(other, 'global', 'pg_control'), Buffer.alloc(64));
    const paths = [pgdata, other, join(dir, 'missing')];
    const { r, ids: [data, seen, missing] } = await readIdentity(paths, 1);
    expect(r.stderr).toBe('');
    expect(data).toMatchObject({ known: true, directory: true, real: pgdata, systemIdentifier: '7312345678901234567', running: true });
    expect(seen).toMatchObject({ known: true, exists: true, directory: true, real: other, control: false });
    expect(seen!.key).toMatch(/^[0-9a-f-]+:\d+:\d+$/);
    expect(seen!.key).not.toBe(data!.key);
    expect(seen!.systemIdentifier).toBeUndefined();
    expect(missing).toMatchObject({ known: true, exists: false });
    // One stat for both directories, one for the missing path; pg_controldata for the first path only.
    expect(await ran()).toEqual(['stat', 'pg_controldata', 'stat']);
    await rm(other, { recursive: true });
  });

  it('identity: a path the shell does not find is asked of stat alone, path by path, with its own answer', async () => {
    // A symbolic link to nothing, a path under a regular file, a directory that vanished, a directory through
    // a link: each keeps the answer a stat of its own gives, and the directories after them still get theirs.
    const file = join(dir, 'file');
    await writeFile(file, '');
    const dangling = join(dir, 'dangling');
    await symlink(join(dir, 'nowhere'), dangling);
    const linked = join(dir, 'linked');
    await symlink(pgdata, linked);
    const paths = [dangling, join(file, 'sub'), linked, pgdata];
    const { r, ids: [toNothing, underFile, throughLink, data] } = await readIdentity(paths, 0);
    expect(r.stderr).toBe('');
    expect(toNothing).toMatchObject({ known: true, exists: false });
    expect(underFile).toMatchObject({ known: true, exists: false });
    expect(throughLink).toMatchObject({ known: true, exists: true, directory: true, real: pgdata });
    expect(data).toMatchObject({ known: true, exists: true, directory: true, real: pgdata });
    expect(throughLink!.key).toBe(data!.key);
    // The batch, then the two paths only stat can judge.
    expect(await ran()).toEqual(['stat', 'stat', 'stat']);
    // Nothing there (another host's PGDATA before its first build): no batch, the path's own stat.
    expect((await readIdentity([join(dir, 'missing')], 0)).ids).toMatchObject([{ known: true, exists: false }]);
    expect(await ran()).toEqual(['stat']);
    await rm(dangling);
    await rm(linked);
    await rm(file);
  });

  it('identity: a path the shell does not find for another reason than its absence is an error, never "missing" (the guard refuses)', async () => {
    // As a mount whose filesystem fails (ENOTCONN, ESTALE, EIO): here ENAMETOOLONG, in a directory the reader can search.
    const tooLong = join(dir, 'x'.repeat(300));
    const paths = [pgdata, tooLong];
    const { ids: [data, failing] } = await readIdentity(paths, 0);
    expect(data).toMatchObject({ known: true, directory: true });
    expect(failing).toMatchObject({ known: false, exists: false });
    expect(failing!.error).toMatch(/File name too long/);
    await ran();
  });

  it('identity: a stat line is taken only for exactly its own path, not for a path its name begins with', async () => {
    // "A|directory|x" is another directory than "A"; had it vanished between the batch and the shell's look,
    // its line comes where A's is expected.
    const a = join(dir, 'a');
    await mkdir(a);
    const fake = await statAnswering('fake-stat', [`${a}|directory|x|directory|1:1`, `${a}|directory|1:2`]);
    const { ids: [gone, real] } = await readIdentity([`${a}|directory|x`, a], 0, fake);
    expect(gone).toMatchObject({ known: true, exists: false });
    const { stdout: ino } = await execa('/usr/bin/stat', ['-L', '-c', '%d:%i', a]);
    expect(real!.key).toMatch(new RegExp(`^[0-9a-f-]+:${ino}$`));
    await ran();
    await rm(a, { recursive: true });
    await rm(fake, { recursive: true });
  });

  it("identity: a stat line that does not name its path is not taken: that path and the rest are asked alone", async () => {
    // A stat that answers for other paths than asked (as when a path appeared or vanished between the batch
    // and the shell's look): its lines must never be given to the wrong path.
    const other = join(dir, 'other2');
    await mkdir(other);
    const liar = await statAnswering('liar', [`${other}|directory|1:1`, `${pgdata}|directory|1:2`]);
    const { r, ids: [data, seen] } = await readIdentity([pgdata, other], 0, liar);
    expect(r.stderr).toBe('');
    expect(data!.key).not.toMatch(/:1:[12]$/);
    expect(seen!.key).not.toMatch(/:1:[12]$/);
    expect(data!.key).not.toBe(seen!.key);
    expect(await ran()).toEqual(['stat', 'stat', 'stat']);
    await rm(other, { recursive: true });
    await rm(liar, { recursive: true });
  });
});
