/**
 * Where the lab keeps everything. One directory holds the whole lab so `lab down` can remove it in
 * one go; every host gets its own subdirectory (its PGDATA, socket, pgBackRest config, logs and
 * locks), so the four "machines" share nothing but the loopback interface and the repository path.
 */
import { join } from 'node:path';

export const LAB_CLUSTER = 'lab';
/** Written first by `lab up`, checked by `lab down` before it removes anything. */
export const LAB_MARKER = '.pgplay-lab.json';
export const LAB_INVENTORY = 'inventory.yml';
export const REPLICATION_PASSWORD_FILE = join('secrets', 'replication-password');
/** --backup-tool barman: the password of the roles barman and streaming_barman. */
export const BARMAN_PASSWORD_FILE = join('secrets', 'barman-password');

export type LabHostName = 'db1' | 'db2' | 'bk1' | 'drill1';
export const LAB_HOSTS: readonly LabHostName[] = ['db1', 'db2', 'bk1', 'drill1'];

/** The hosts that run PostgreSQL, with their port offset from the lab's base port. */
export const PORT_OFFSET: Record<Exclude<LabHostName, 'bk1'>, number> = { db1: 0, db2: 1, drill1: 2 };

export interface HostPaths {
  dir: string;
  pgdata: string;
  socketDir: string;
  pgbackrestConfig: string;
  logDir: string;
  lockDir: string;
  /** libpq password file for replication connections made from this host. */
  pgpass: string;
}

export function hostPaths(labDir: string, host: LabHostName): HostPaths {
  const dir = join(labDir, host);
  return {
    dir,
    pgdata: join(dir, 'data'),
    socketDir: join(dir, 'run'),
    pgbackrestConfig: join(dir, 'pgbackrest.conf'),
    logDir: join(dir, 'log'),
    lockDir: join(dir, 'lock'),
    pgpass: join(dir, 'pgpass'),
  };
}

export function repositoryPath(labDir: string): string {
  return join(labDir, 'bk1', 'repo');
}

/** pg_dumpall -g output lands beside the repository (nightly-backup's globals export). */
export function globalsPath(labDir: string): string {
  return join(labDir, 'bk1', 'globals');
}

/**
 * --backup-tool barman: the lab's own Barman on bk1, apart from the machine's (/etc/barman.conf,
 * /var/lib/barman are never touched): barman.conf (barman -c) with barman.d beside it for the server's
 * configuration, pgpass for its passwords, barman_home holding backups, WAL and locks (the pid of
 * receive-wal), and its log.
 */
export interface BarmanPaths {
  /** barman.conf: templates/barman.conf.hbs places barman.d, home and the log beside it. */
  config: string;
  /** barman_home, where Barman's lock files hold the pids of its background commands. */
  home: string;
}

export function barmanPaths(labDir: string): BarmanPaths {
  const dir = join(labDir, 'bk1', 'barman');
  return { config: join(dir, 'barman.conf'), home: join(dir, 'home') };
}
