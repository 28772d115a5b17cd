/**
 * Real PostgreSQL clusters for tests: initdb as the postgres OS user into a temp dir, a private unix
 * socket dir, loopback only, started with pg_ctl -w, stopped with pg_ctl -m fast and checked by pid.
 * Nothing here ever signals a process by name.
 */
import { execa } from 'execa';
import { access, appendFile, chown, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host } from '../../src/model/inventory.js';
import { embeddedBindir } from './embedded-pg.js';

export const DEBIAN_PG15_BINDIR = '/usr/lib/postgresql/15/bin';
/** Client tools (psql, pg_controldata, pg_basebackup) that work against every supported server. */
export const CLIENT_BINDIR = DEBIAN_PG15_BINDIR;
export const PG_OS_USER = 'postgres';

export interface StartClusterOptions {
  /** Server binaries; default Debian's 15, or the embedded package for `version`. */
  bindir?: string;
  port: number;
  /** Parent directory for data, socket and log; a fresh temp dir by default (removed by stop()). */
  dir?: string;
  /** Major version; picks the binaries when bindir is not given. */
  version?: number;
  /**
   * Authentication for local (unix socket) connections. With 'peer', TCP asks for a password:
   * scram-sha-256 from 14 (as pgplay's pg_hba.conf does), md5 before.
   */
  auth?: 'peer' | 'trust';
  /** Extra postgresql.conf settings, written as given (values are quoted when they are strings). */
  settings?: Record<string, string | number | boolean>;
  /** Use this PGDATA instead of <dir>/data (it is never removed by stop()). */
  pgdata?: string;
  /** Run initdb (default). false leaves PGDATA for the caller to fill (pg_basebackup, a restore). */
  init?: boolean;
  /** Do not start the server (initdb only). */
  noStart?: boolean;
}

export interface Cluster {
  pgdata: string;
  port: number;
  socketDir: string;
  bindir: string;
  /** The parent directory (data, sock, postgres.log). */
  dir: string;
  logFile: string;
  /** Postmaster pid, or 0 while stopped. */
  pid: number;
  /** Runs SQL through psql over the unix socket as the postgres OS user; stdout, unaligned, tuples only. */
  psql(sql: string, opts?: { database?: string }): Promise<string>;
  start(): Promise<void>;
  /**
   * pg_ctl stop -m fast, then waits until the pid is gone; removes the dir when startCluster made it
   * (keep: leave it for a restart; stopAllClusters removes it later).
   */
  stop(opts?: { keep?: boolean }): Promise<void>;
  /** The server log so far (for assertions and for failure messages). */
  log(): Promise<string>;
}

/** Every cluster made by this process and not yet stopped, newest last (stopped in reverse). */
const created: Cluster[] = [];

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

function asPostgres(argv: string[]): [string, string[]] {
  return ['runuser', ['-u', PG_OS_USER, '--', ...argv]];
}

async function runAsPostgres(argv: string[], cwd: string, opts: { env?: Record<string, string> } = {}) {
  const [cmd, args] = asPostgres(argv);
  return execa(cmd, args, { cwd, reject: false, env: { LC_ALL: 'C', ...opts.env } });
}

async function chownR(path: string, uid: number, gid: number): Promise<void> {
  await execa('chown', ['-R', `${uid}:${gid}`, path]);
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await execa('id', ['-u', PG_OS_USER])).stdout.trim());
  const gid = Number((await execa('id', ['-g', PG_OS_USER])).stdout.trim());
  return { uid, gid };
}

function confValue(v: string | number | boolean): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

export function pidAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readPostmasterPid(pgdata: string): Promise<number> {
  try {
    const text = await readFile(join(pgdata, 'postmaster.pid'), 'utf8');
    return Number(text.split('\n')[0]);
  } catch {
    return 0;
  }
}

export async function serverMajor(bindir: string): Promise<number> {
  const r = await execa(join(bindir, 'postgres'), ['--version']);
  const m = /\(PostgreSQL\) (\d+)/.exec(r.stdout);
  if (!m) throw new Error(`cannot tell the version of ${bindir}/postgres: ${r.stdout}`);
  return Number(m[1]);
}

export async function resolveBindir(opts: { bindir?: string; version?: number }): Promise<string> {
  if (opts.bindir) return opts.bindir;
  if (opts.version === undefined || opts.version === 15) {
    if (await exists(join(DEBIAN_PG15_BINDIR, 'postgres'))) return DEBIAN_PG15_BINDIR;
  }
  return embeddedBindir(opts.version ?? 15);
}

export async function startCluster(opts: StartClusterOptions): Promise<Cluster> {
  const bindir = await resolveBindir(opts);
  const ownDir = !opts.dir;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'pgplay-pg-')));
  const pgdata = opts.pgdata ?? join(dir, 'data');
  const init = opts.init ?? !opts.pgdata;
  const socketDir = join(dir, 'sock');
  const logFile = join(dir, 'postgres.log');
  const { uid, gid } = await postgresIds();
  await mkdir(socketDir, { recursive: true });
  await chown(dir, uid, gid);
  await chown(socketDir, uid, gid);

  if (init) {
    const auth = opts.auth ?? 'trust';
    const init = await runAsPostgres(
      [
        join(bindir, 'initdb'),
        '-D',
        pgdata,
        '-U',
        PG_OS_USER,
        '-E',
        'UTF8',
        '--locale=C',
        '--no-sync',
        `--auth-local=${auth}`,
        // initdb sets password_encryption from this (14+), so it must match what pgplay's pg_hba asks.
        `--auth-host=${auth === 'trust' ? 'trust' : (await serverMajor(bindir)) >= 14 ? 'scram-sha-256' : 'md5'}`,
      ],
      dir,
    );
    if (init.exitCode !== 0) throw new Error(`initdb failed (${init.exitCode}): ${init.stderr || init.stdout}`);
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: '127.0.0.1',
      port: opts.port,
      unix_socket_directories: socketDir,
      fsync: false,
      ...opts.settings,
    };
    const lines = Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`);
    await appendFile(join(pgdata, 'postgresql.conf'), `\n# test cluster\n${lines.join('\n')}\n`);
  }

  const cluster: Cluster = {
    pgdata,
    port: opts.port,
    socketDir,
    bindir,
    dir,
    logFile,
    pid: 0,
    async psql(sql, o = {}) {
      const r = await runAsPostgres(
        [
          join(CLIENT_BINDIR, 'psql'),
          '-X',
          '-A',
          '-t',
          '-q',
          '-v',
          'ON_ERROR_STOP=1',
          '-h',
          socketDir,
          '-p',
          String(opts.port),
          '-U',
          PG_OS_USER,
          '-d',
          o.database ?? 'postgres',
          '-c',
          sql,
        ],
        dir,
      );
      if (r.exitCode !== 0) throw new Error(`psql failed (${r.exitCode}): ${r.stderr}`);
      return r.stdout.trim();
    },
    async start() {
      // Every start/stop passes the port explicitly, so a restored PGDATA (whose postgresql.conf
      // names the source's port and socket dir) still comes up where the test expects it.
      const o = `-p ${opts.port} -k ${socketDir} -c listen_addresses=127.0.0.1`;
      const r = await runAsPostgres(
        [join(bindir, 'pg_ctl'), '-D', pgdata, '-l', logFile, '-o', o, '-w', '-t', '90', 'start'],
        dir,
      );
      if (r.exitCode !== 0) {
        const log = await cluster.log();
        throw new Error(`pg_ctl start failed (${r.exitCode}): ${r.stderr || r.stdout}\n--- log ---\n${log.slice(-3000)}`);
      }
      cluster.pid = await readPostmasterPid(pgdata);
      if (!pidAlive(cluster.pid)) throw new Error(`postmaster pid ${cluster.pid} from ${pgdata} is not running`);
    },
    async stop(o = {}) {
      const pid = cluster.pid || (await readPostmasterPid(pgdata));
      if (pid && pidAlive(pid)) {
        const r = await runAsPostgres([join(bindir, 'pg_ctl'), '-D', pgdata, '-m', 'fast', '-w', '-t', '60', 'stop'], dir);
        const deadline = Date.now() + 15_000;
        while (pidAlive(pid) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
        if (pidAlive(pid)) throw new Error(`postmaster ${pid} still running after pg_ctl stop: ${r.stderr}`);
      }
      cluster.pid = 0;
      // A kept cluster stays tracked, so stopAllClusters still removes its dir at the end.
      if (o.keep) return;
      const i = created.indexOf(cluster);
      if (i >= 0) created.splice(i, 1);
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
    async log() {
      try {
        return await readFile(logFile, 'utf8');
      } catch {
        return '';
      }
    },
  };

  await chownR(dir, uid, gid);
  created.push(cluster);
  if (!opts.noStart) {
    try {
      await cluster.start();
    } catch (e) {
      await cluster.stop().catch(() => undefined);
      throw e;
    }
  }
  return cluster;
}

/**
 * Stops every cluster this process made and has not stopped yet, newest first (a standby before the
 * primary whose dir it may live in), and removes their dirs: the afterAll safety net.
 */
export async function stopAllClusters(): Promise<void> {
  const errors: unknown[] = [];
  for (const c of [...created].reverse()) await c.stop().catch((e) => errors.push(e));
  if (errors.length) throw errors[0];
}

/** An inventory Host (as the engine resolves it) that points at a test cluster. */
export function hostForCluster(
  c: Pick<Cluster, 'pgdata' | 'port' | 'socketDir' | 'bindir'>,
  opts: { name?: string; role?: Host['role']; version?: number; upstream?: string; superuser?: string } = {},
): Host {
  return {
    name: opts.name ?? 'db1',
    address: '127.0.0.1',
    role: opts.role ?? 'primary',
    upstream: opts.upstream,
    pgdata: c.pgdata,
    postgres: {
      version: opts.version ?? 15,
      bindir: c.bindir,
      port: c.port,
      osUser: PG_OS_USER,
      superuser: opts.superuser ?? PG_OS_USER,
      socketDir: c.socketDir,
      settings: {},
      hba: [],
    },
    connection: { transport: 'local', become: PG_OS_USER },
    vars: {},
  };
}
