/**
 * What a lab is built from: its directory, PostgreSQL major and binaries, ports, the OS user that runs
 * PostgreSQL and the backup tool. Defaults suit a fresh machine; a lab that already exists keeps what
 * it was built with, so `lab up` twice is the same lab.
 */
import { execa } from 'execa';
import { access, constants } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { PgplayError } from '../core/errors.js';
import { barmanSupports, parseBarmanVersion } from '../barman/versions.js';
import { pgbackrestSupports, SUPPORTED_MAJORS } from '../postgres/versions.js';

export const DEFAULT_PG_VERSION = 15;
/** Below Linux's ephemeral range (32768-60999), where an outgoing connection may hold a port the lab wants. */
export const DEFAULT_BASE_PORT = 15400;
/** db1, db2 and drill1 take base, base+1 and base+2. */
export const PORTS_PER_LAB = 3;

export const LAB_BACKUP_TOOLS = ['pgbackrest', 'barman', 'basebackup'] as const;
export type LabBackupTool = (typeof LAB_BACKUP_TOOLS)[number];
export const BACKUP_TOOL_NAMES: Record<LabBackupTool, string> = { pgbackrest: 'pgBackRest', barman: 'Barman', basebackup: 'pg_basebackup' };

export interface LabOptions {
  dir: string;
  pgVersion: number;
  bindir: string;
  basePort: number;
  /** OS user that owns PGDATA and runs PostgreSQL (`postgres` when pgplay runs as root). */
  osUser: string;
  /** User pgplay becomes for PGDATA work; unset when it already runs as osUser. */
  become?: string;
  backupTool: LabBackupTool;
  /** Why the backup tool is basebackup, when pgBackRest was not usable. */
  backupNote?: string;
}

export interface LabRequest {
  dir?: string;
  pgVersion?: number;
  bindir?: string;
  basePort?: number;
  /** Force a backup tool; by default pgBackRest when it is installed and supports the version. */
  backupTool?: LabBackupTool;
}

/**
 * /root is 0700 on Debian, so a lab under root's home would be unreachable for the postgres user:
 * as root the lab lives under /var/lib, like PostgreSQL's own data.
 */
export function defaultLabDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PGPLAY_LAB_DIR) return resolve(env.PGPLAY_LAB_DIR);
  if (userInfo().uid === 0) return '/var/lib/pgplay-lab';
  const base = env.XDG_DATA_HOME ? resolve(env.XDG_DATA_HOME) : join(homedir(), '.local', 'share');
  return join(base, 'pgplay-lab');
}

export function defaultBindir(version: number): string {
  return `/usr/lib/postgresql/${version}/bin`;
}

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

export function checkVersion(version: number): void {
  if (!(SUPPORTED_MAJORS as readonly number[]).includes(version)) {
    throw new PgplayError({
      code: 'USAGE',
      message: `--pg-version ${version} is not supported`,
      expected: `a major version from ${SUPPORTED_MAJORS[0]} to ${SUPPORTED_MAJORS[SUPPORTED_MAJORS.length - 1]}`,
    });
  }
}

export function checkBasePort(port: number): void {
  if (!Number.isInteger(port) || port < 1024 || port + PORTS_PER_LAB - 1 > 65535) {
    throw new PgplayError({
      code: 'USAGE',
      message: `--base-port ${port} is out of range`,
      expected: `a port from 1024 to ${65535 - PORTS_PER_LAB + 1} (the lab uses it and the next ${PORTS_PER_LAB - 1})`,
    });
  }
}

/** pgBackRest when it is installed and supports this major; pg_basebackup otherwise, with the reason. */
export async function chooseBackupTool(pgVersion: number): Promise<Pick<LabOptions, 'backupTool' | 'backupNote'>> {
  const r = await execa('pgbackrest', ['version'], { reject: false });
  const m = /pgBackRest (\d+(?:\.\d+)+)/.exec(r.stdout ?? '');
  if (r.failed || !m) return { backupTool: 'basebackup', backupNote: 'pgBackRest is not installed (apt-get install pgbackrest)' };
  const support = pgbackrestSupports(m[1]!, pgVersion);
  if (!support.ok) return { backupTool: 'basebackup', backupNote: support.reason };
  return { backupTool: 'pgbackrest' };
}

/** --backup-tool barman: Barman installed here and able to serve this major (3.4 stops at PostgreSQL 15). */
export async function checkBarman(pgVersion: number): Promise<void> {
  const r = await execa('barman', ['--version'], { reject: false });
  const version = r.failed ? undefined : parseBarmanVersion(`${r.stdout ?? ''}\n${r.stderr ?? ''}`);
  if (!version) {
    throw new PgplayError({ code: 'USAGE', message: '--backup-tool barman: Barman is not installed on this machine', hint: 'apt-get install barman barman-cli' });
  }
  const fit = barmanSupports(version, pgVersion);
  if (!fit.ok) {
    throw new PgplayError({
      code: 'USAGE',
      message: `--backup-tool barman: ${fit.reason}`,
      hint: `build the lab with --pg-version 15 or older, or with --backup-tool pgbackrest or basebackup`,
    });
  }
}

async function backupToolFor(request: LabRequest, pgVersion: number): Promise<Pick<LabOptions, 'backupTool' | 'backupNote'>> {
  if (request.backupTool === 'basebackup') return { backupTool: 'basebackup', backupNote: 'chosen with --backup-tool basebackup' };
  if (request.backupTool === 'barman') {
    await checkBarman(pgVersion);
    return { backupTool: 'barman' };
  }
  const found = await chooseBackupTool(pgVersion);
  if (request.backupTool === 'pgbackrest' && found.backupTool !== 'pgbackrest') {
    throw new PgplayError({ code: 'USAGE', message: `--backup-tool pgbackrest: ${found.backupNote}` });
  }
  return found;
}

/** The options for a new lab: flags over defaults, checked against what is installed. */
export async function resolveNewLab(request: LabRequest, env: NodeJS.ProcessEnv = process.env): Promise<LabOptions> {
  const pgVersion = request.pgVersion ?? DEFAULT_PG_VERSION;
  checkVersion(pgVersion);
  const basePort = request.basePort ?? DEFAULT_BASE_PORT;
  checkBasePort(basePort);
  const bindir = resolve(request.bindir ?? defaultBindir(pgVersion));
  for (const tool of ['initdb', 'pg_ctl', 'postgres', 'psql']) {
    if (!(await executable(join(bindir, tool)))) {
      throw new PgplayError({
        code: 'USAGE',
        message: `PostgreSQL ${pgVersion} is not installed: ${join(bindir, tool)} is missing`,
        hint: `apt-get install postgresql-${pgVersion}, or pass --bindir DIR with initdb, pg_ctl, postgres and psql`,
      });
    }
  }
  const root = userInfo().uid === 0;
  const osUser = root ? 'postgres' : userInfo().username;
  if (root) {
    const id = await execa('id', ['-u', osUser], { reject: false });
    if (id.exitCode !== 0) {
      throw new PgplayError({
        code: 'USAGE',
        message: 'there is no postgres OS user to run PostgreSQL as (PostgreSQL refuses to run as root)',
        hint: 'apt-get install postgresql creates it; or run pgplay lab as an ordinary user',
      });
    }
  }
  return {
    dir: resolve(request.dir ?? defaultLabDir(env)),
    pgVersion,
    bindir,
    basePort,
    osUser,
    become: root ? osUser : undefined,
    ...(await backupToolFor(request, pgVersion)),
  };
}

/** A lab that exists keeps its options; flags that contradict them are a usage error, not a rebuild. */
export function reconcile(existing: LabOptions, request: LabRequest): LabOptions {
  const clash = (flag: string, asked: unknown, built: unknown) =>
    new PgplayError({
      code: 'USAGE',
      message: `the lab in ${existing.dir} was built with ${flag} ${String(built)}, not ${String(asked)}`,
      hint: `run \`pgplay lab down --dir ${existing.dir}\` first to build it anew, or drop ${flag}`,
    });
  if (request.pgVersion !== undefined && request.pgVersion !== existing.pgVersion) throw clash('--pg-version', request.pgVersion, existing.pgVersion);
  if (request.basePort !== undefined && request.basePort !== existing.basePort) throw clash('--base-port', request.basePort, existing.basePort);
  if (request.bindir !== undefined && resolve(request.bindir) !== existing.bindir) throw clash('--bindir', resolve(request.bindir), existing.bindir);
  if (request.backupTool !== undefined && request.backupTool !== existing.backupTool) throw clash('--backup-tool', request.backupTool, existing.backupTool);
  return existing;
}
