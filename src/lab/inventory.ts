/**
 * The lab's inventory: an ordinary pgplay inventory (the shipped playbooks cannot tell the lab from
 * production) with every host on loopback, its own port, socket directory and pgBackRest files under
 * the lab directory, and the local transport.
 */
import { join } from 'node:path';
import { yamlLib } from '../load/yaml-lib.js';
import { SCHEMAS_DIR } from '../core/paths.js';
import type { BackupConfig, HostEntry, Inventory } from '../model/inventory.js';
import { versionFacts } from '../postgres/versions.js';
import { BARMAN_PASSWORD_FILE, barmanPaths, hostPaths, LAB_CLUSTER, PORT_OFFSET, REPLICATION_PASSWORD_FILE, repositoryPath, globalsPath, type LabHostName } from './layout.js';
import type { LabOptions } from './options.js';

const LOOPBACK = '127.0.0.1';

export function labPort(options: Pick<LabOptions, 'basePort'>, host: Exclude<LabHostName, 'bk1'>): number {
  return options.basePort + PORT_OFFSET[host];
}

function hostVars(options: LabOptions, host: LabHostName): Record<string, unknown> {
  const p = hostPaths(options.dir, host);
  return {
    lab_dir: p.dir,
    pgbackrest_config: p.pgbackrestConfig,
    pgbackrest_log_path: p.logDir,
    pgbackrest_lock_path: p.lockDir,
    pgpass_file: p.pgpass,
  };
}

function databaseHost(options: LabOptions, host: Exclude<LabHostName, 'bk1'>, entry: Pick<HostEntry, 'role' | 'upstream'>): HostEntry {
  const p = hostPaths(options.dir, host);
  const settings: Record<string, string> = {};
  // Each host pushes WAL with its own pgBackRest configuration, so after a promotion the new primary
  // archives through its own file. A drill host never archives (the template turns archive_mode off).
  if (options.backupTool === 'pgbackrest' && entry.role !== 'drill') {
    settings.archive_command = `pgbackrest --config=${p.pgbackrestConfig} --stanza=${LAB_CLUSTER} archive-push %p`;
  }
  return {
    address: LOOPBACK,
    ...entry,
    pgdata: p.pgdata,
    postgres: {
      port: labPort(options, host),
      socketDir: p.socketDir,
      ...(Object.keys(settings).length ? { settings } : {}),
    },
    vars: hostVars(options, host),
  };
}

function backupSection(options: LabOptions): BackupConfig {
  if (options.backupTool === 'barman') {
    // Barman on this machine as the PostgreSQL OS user, with the lab's own configuration: no SSH.
    return {
      tool: 'barman',
      repoHost: 'bk1',
      repoPath: repositoryPath(options.dir),
      barman: {
        server: LAB_CLUSTER,
        method: 'postgres',
        retention: { redundancy: 2 },
        minimumRedundancy: 1,
        password: { file: join(options.dir, BARMAN_PASSWORD_FILE) },
        config: barmanPaths(options.dir).config,
        local: true,
      },
    };
  }
  return {
    tool: options.backupTool,
    stanza: LAB_CLUSTER,
    repoHost: 'bk1',
    repoPath: repositoryPath(options.dir),
    retention: { full: 2, diff: 4 },
    fromStandby: false,
    processMax: 2,
    compressType: 'lz4',
  };
}

/** db1 and db2 trade places after a promotion: the primary is whichever the lab says (db1 at first). */
export type LabPrimary = 'db1' | 'db2';

export function labInventory(options: LabOptions, primary: LabPrimary = 'db1'): Inventory {
  const standby: LabPrimary = primary === 'db1' ? 'db2' : 'db1';
  const walKeep: Record<string, string | number> =
    versionFacts(options.pgVersion).walKeepSetting === 'wal_keep_size' ? { wal_keep_size: '128MB' } : { wal_keep_segments: 8 };
  return {
    cluster: LAB_CLUSTER,
    postgres: {
      version: options.pgVersion,
      bindir: options.bindir,
      osUser: options.osUser,
      superuser: options.osUser,
      // Four servers share one machine: keep each one small.
      settings: { shared_buffers: '32MB', max_connections: 40, ...walKeep },
    },
    connection: { transport: 'local', ...(options.become ? { become: options.become } : {}) },
    replication: {
      user: 'replicator',
      password: { file: join(options.dir, REPLICATION_PASSWORD_FILE) },
      slots: true,
    },
    backup: backupSection(options),
    hosts: {
      db1: databaseHost(options, 'db1', primary === 'db1' ? { role: 'primary' } : { role: 'standby', upstream: primary }),
      db2: databaseHost(options, 'db2', standby === 'db2' ? { role: 'standby', upstream: primary } : { role: 'primary' }),
      bk1: { address: LOOPBACK, role: 'repository', vars: { ...hostVars(options, 'bk1'), globals_dir: globalsPath(options.dir) } },
      drill1: databaseHost(options, 'drill1', { role: 'drill' }),
    },
    vars: { lab: true },
  };
}

export function inventoryYaml(options: LabOptions, primary: LabPrimary = 'db1'): string {
  const header = [
    `# yaml-language-server: $schema=${join(SCHEMAS_DIR, 'inventory.schema.json')}`,
    `# The pgplay lab in ${options.dir}, written by \`pgplay lab up\`; \`pgplay lab down\` removes it.`,
    '# An ordinary inventory: every shipped playbook runs against it, e.g.',
    '#   pgplay run playbooks/nightly-backup.yml',
    options.backupNote ? `# Backups use pg_basebackup: ${options.backupNote}.` : undefined,
    options.backupTool === 'barman'
      ? `# Backups use Barman on this machine as ${options.osUser}, with the lab's own ${barmanPaths(options.dir).config} (backup.barman.local).`
      : undefined,
    primary !== 'db1' ? `# ${primary} is the primary since a promotion; pgplay rewrote the roles of db1 and db2.` : undefined,
  ].filter((l): l is string => l !== undefined);
  return `${header.join('\n')}\n${yamlLib().stringify(labInventory(options, primary), { lineWidth: 0 })}`;
}
