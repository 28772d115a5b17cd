/**
 * The files postgresql-common needs in /etc/postgresql/<version>/<cluster> to know a cluster
 * (pg_lsclusters, pg_ctlcluster, postgresql@.service), as pg_createcluster writes them. A backup holds
 * PGDATA only, and on Debian the configuration is not in PGDATA: a standby restored onto a host without
 * that directory would be a cluster Debian does not see. pgplay writes only the files that are missing.
 */
import { pgconfValue } from '../render/quote.js';

export interface DebianClusterPaths {
  version: number;
  cluster: string;
  pgdata: string;
  configDir: string;
  port: number;
  socketDir: string;
}

/** The file names, in the order they are created. */
export const DEBIAN_CLUSTER_FILES = ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf', 'start.conf', 'pg_ctl.conf', 'environment'] as const;
export type DebianClusterFile = (typeof DEBIAN_CLUSTER_FILES)[number];

/**
 * postgresql.conf: where the cluster's files are, and `include_dir = 'conf.d'`, where pgplay's settings
 * file (and the user's own files) live. Nothing else: what the server runs with comes from conf.d.
 */
export function debianPostgresqlConf(p: DebianClusterPaths): string {
  return [
    `# Written by pgplay for PostgreSQL ${p.version} cluster ${p.cluster}, whose data directory was restored`,
    '# from a backup (Debian keeps the configuration outside PGDATA, so the backup had none). Yours to edit;',
    "# pgplay's settings are in conf.d/pgplay.conf.",
    `data_directory = ${pgconfValue(p.pgdata)}`,
    `hba_file = ${pgconfValue(`${p.configDir}/pg_hba.conf`)}`,
    `ident_file = ${pgconfValue(`${p.configDir}/pg_ident.conf`)}`,
    `external_pid_file = ${pgconfValue(`/var/run/postgresql/${p.version}-${p.cluster}.pid`)}`,
    `port = ${p.port}`,
    `unix_socket_directories = ${pgconfValue(p.socketDir)}`,
    `cluster_name = ${pgconfValue(`${p.version}/${p.cluster}`)}`,
    "include_dir = 'conf.d'",
    '',
  ].join('\n');
}

/** pg_hba.conf as pg_createcluster writes it (peer locally, scram-sha-256 on loopback). */
export const DEBIAN_PG_HBA = `# PostgreSQL Client Authentication Configuration File (written by pgplay as pg_createcluster does)
# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             postgres                                peer
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
local   replication     all                                     peer
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
`;

export const DEBIAN_PG_IDENT = `# PostgreSQL User Name Maps (written by pgplay as pg_createcluster does)
# MAPNAME       SYSTEM-USERNAME         PG-USERNAME
`;

export const DEBIAN_START_CONF = `# Automatic startup configuration
#   auto: automatically start the cluster
#   manual: manual startup with pg_ctlcluster/postgresql@.service only
#   disabled: refuse to start cluster
# See pg_createcluster(1) for details. When running from systemd,
# invoke 'systemctl daemon-reload' after editing this file.

auto
`;

export const DEBIAN_PG_CTL_CONF = `# Automatic pg_ctl configuration
# This configuration file contains cluster specific options to be passed to
# pg_ctl(1).

pg_ctl_options = ''
`;

export const DEBIAN_ENVIRONMENT = `# environment variables for postgres processes
# This file has the same syntax as postgresql.conf:
#  VARIABLE = simple_value
#  VARIABLE2 = 'any value!'
# I. e. you need to enclose any value which does not only consist of letters,
# numbers, and '-', '_', '.' in single quotes. Shell commands are not
# evaluated.
`;

/** data_directory as a postgresql.conf sets it (the last uncommented line wins), if it does. */
export function dataDirectoryOf(conf: string): string | undefined {
  let found: string | undefined;
  for (const line of conf.split('\n')) {
    const m = /^\s*data_directory\s*=?\s*'((?:[^']|'')*)'/.exec(line) ?? /^\s*data_directory\s*=?\s*([^\s#']+)/.exec(line);
    if (m) found = m[1]!.replace(/''/g, "'");
  }
  return found;
}
