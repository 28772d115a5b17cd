import type { JsonSchema } from './json-schema.js';
import { LAYOUTS, ROLES, SERVICE_MANAGERS } from '../model/inventory.js';
import {
  DRAFT_07,
  DURATION,
  NAME_EXPECTED,
  NAME_PATTERN,
  PORT,
  SCALAR_MAP,
  SCHEMA_BASE_URL,
  SECRET_REF,
} from './common.js';

const ref = (name: string) => ({ $ref: `#/definitions/${name}` });

/** A byte size as PostgreSQL writes one (1024-based). */
const SIZE = (what: string, dflt: string): JsonSchema => ({
  type: 'string',
  pattern: '^[0-9]+ ?(B|kB|MB|GB|TB)?$',
  errorMessage: "a size such as '64MB' (B, kB, MB, GB, TB)",
  default: dflt,
  description: what,
});
const AGE = (what: string, dflt?: string): JsonSchema => ({ ...ref('duration'), ...(dflt ? { default: dflt } : {}), description: what });

/** backup.barman: what pgplay writes into the Barman server's configuration (playbooks/include/backup/barman/). */
const BARMAN: JsonSchema = {
  type: 'object',
  description: 'With tool barman: the Barman server on backup.repoHost (/etc/barman.d/<server>.conf)',
  properties: {
    method: {
      enum: ['postgres', 'rsync'],
      default: 'postgres',
      description: 'backup_method: postgres (pg_basebackup, WAL streamed through a replication slot as well as archived) or rsync (over SSH as the PostgreSQL OS user, reuse_backup = link)',
    },
    server: { type: 'string', pattern: '^[a-z0-9_]+$', errorMessage: 'a Barman server name of lowercase letters, digits and _ (it names the replication slot too)', description: 'The Barman server name (default: the cluster name)' },
    retention: {
      type: 'object',
      description: 'retention_policy, enforced by barman cron: REDUNDANCY n or RECOVERY WINDOW OF n DAYS (one of them)',
      properties: {
        redundancy: { type: 'integer', minimum: 1, description: 'REDUNDANCY n: the newest n backups are kept' },
        recoveryWindowDays: { type: 'integer', minimum: 1, description: 'RECOVERY WINDOW OF n DAYS' },
      },
      minProperties: 1,
      maxProperties: 1,
      errorMessage: 'exactly one of redundancy: n or recoveryWindowDays: n',
      additionalProperties: false,
    },
    minimumRedundancy: { type: 'integer', minimum: 0, default: 1, description: 'minimum_redundancy: backups barman never deletes, whatever the retention' },
    lastBackupMaximumAgeDays: { type: 'integer', minimum: 1, description: 'last_backup_maximum_age in days: barman check fails when the newest backup is older' },
    password: { ...ref('secretRef'), description: 'Password of the roles barman (conninfo) and streaming_barman (streaming_conninfo) on the primary' },
    config: {
      type: 'string',
      pattern: '^/[A-Za-z0-9._+/-]*$',
      errorMessage: 'an absolute path of letters, digits and ._+-/',
      description:
        "The barman.conf pgplay runs Barman with (barman -c; default Barman's own, /etc/barman.conf). pgplay writes the server's <server>.conf into barman.d beside it, which must be that file's configuration_files_directory",
    },
    local: {
      type: 'boolean',
      default: false,
      description:
        "Barman runs on the database hosts' own machine (every host at the repository host's address) as their PostgreSQL OS user, the barman_user of backup.barman.config: no SSH anywhere. recover writes PGDATA itself, archive_command hands WAL to barman put-wal, restore_command is barman get-wal, Barman's passwords are in pgpass beside config. A one-machine lab (pgplay lab up --backup-tool barman); needs config and method postgres",
    },
  },
  required: ['password'],
  additionalProperties: false,
};

const postgresProperties: Record<string, JsonSchema> = {
  version: {
    type: 'integer',
    minimum: 11,
    maximum: 17,
    description: 'PostgreSQL major version; drives templates, recovery settings and procedures',
  },
  layout: {
    enum: [...LAYOUTS],
    default: 'pgdata',
    description:
      'Where the cluster files live. debian: config in /etc/postgresql/<version>/<cluster>, PGDATA by default ' +
      '/var/lib/postgresql/<version>/<cluster>, log in /var/log/postgresql (postgresql-common); pgdata: config inside PGDATA',
  },
  cluster: {
    type: 'string',
    pattern: NAME_PATTERN,
    errorMessage: `a Debian cluster name ${NAME_EXPECTED}`,
    default: 'main',
    description: "The Debian cluster name (pg_createcluster's), for layout: debian",
  },
  service: {
    enum: [...SERVICE_MANAGERS],
    description:
      'What starts, stops, restarts, reloads and promotes the server: pg_ctl, pg_ctlcluster (postgresql-common) or systemd. ' +
      'Default pg_ctlcluster with layout debian (pg_ctl on a drill host, whose restored copy no Debian cluster describes), else pg_ctl',
  },
  serviceUnit: {
    type: 'string',
    pattern: '^([A-Za-z0-9@._:\\\\-]|\\{\\{(version|cluster|host)\\}\\})+$',
    errorMessage: 'a systemd unit name; {{version}}, {{cluster}} and {{host}} are replaced',
    description:
      'The systemd unit of the server (service: systemd); {{version}}, {{cluster}} and {{host}} are replaced. ' +
      'Default postgresql@{{version}}-{{cluster}} with layout debian, else postgresql-{{version}}',
  },
  bindir: {
    type: 'string',
    minLength: 1,
    description: 'Directory of pg_ctl, initdb, pg_basebackup (default /usr/lib/postgresql/<version>/bin)',
  },
  port: { ...PORT, default: 5432, description: 'Port PostgreSQL listens on' },
  osUser: { type: 'string', minLength: 1, default: 'postgres', description: 'OS user owning PGDATA; commands touching PGDATA run as it' },
  superuser: { type: 'string', minLength: 1, default: 'postgres', description: 'Database role used by SQL steps' },
  password: { ...ref('secretRef'), description: 'Superuser password, when peer authentication is not available' },
  socketDir: { type: 'string', minLength: 1, default: '/var/run/postgresql', description: 'Unix socket directory' },
  settings: { ...SCALAR_MAP, default: {}, description: 'Extra postgresql.conf settings' },
  hba: { type: 'array', items: ref('hbaRule'), default: [], description: 'Extra pg_hba.conf rules' },
};

const definitions: Record<string, JsonSchema> = {
  secretRef: SECRET_REF,
  duration: DURATION,
  hbaRule: {
    type: 'object',
    description: 'One pg_hba.conf line',
    properties: {
      type: { enum: ['local', 'host', 'hostssl', 'hostnossl'], description: 'Connection type' },
      database: { type: 'string', minLength: 1, description: 'Database name, all, replication, ...' },
      user: { type: 'string', minLength: 1, description: 'Role name or all' },
      address: { type: 'string', minLength: 1, description: 'Client address (CIDR); not for type local' },
      method: { type: 'string', minLength: 1, description: 'Authentication method: scram-sha-256, md5, peer, trust, ...' },
    },
    required: ['type', 'database', 'user', 'method'],
    additionalProperties: false,
  },
  postgres: {
    type: 'object',
    description: 'Cluster-wide PostgreSQL settings; any host may override any key',
    properties: postgresProperties,
    required: ['version'],
    additionalProperties: false,
  },
  postgresOverride: {
    type: 'object',
    description: 'Per-host overrides of the cluster-wide postgres settings',
    properties: postgresProperties,
    additionalProperties: false,
  },
  connection: {
    type: 'object',
    description: 'How pgplay reaches a host',
    properties: {
      transport: { enum: ['ssh', 'local'], default: 'ssh', description: 'ssh, or local for this machine' },
      user: { type: 'string', minLength: 1, default: 'root', description: 'SSH user' },
      port: { ...PORT, default: 22, description: 'SSH port' },
      identityFile: { type: 'string', minLength: 1, description: 'Private key file' },
      passphrase: { ...ref('secretRef'), description: 'Passphrase of the private key' },
      agent: {
        type: ['boolean', 'string'],
        description: 'Use an ssh-agent: true for SSH_AUTH_SOCK, or the socket path',
      },
      knownHosts: {
        type: 'string',
        minLength: 1,
        default: '~/.ssh/known_hosts',
        description: 'known_hosts file; host keys are verified',
      },
      hostKeyChecking: {
        enum: ['strict', 'accept-new'],
        default: 'strict',
        description: 'strict: an unknown or changed key is an error; accept-new: new keys are added',
      },
      become: { type: 'string', minLength: 1, description: 'OS user to run PGDATA commands as (runuser/sudo)' },
      becomeMethod: { enum: ['auto', 'sudo', 'runuser'], default: 'auto', description: 'How to become that user' },
      connectTimeout: { ...ref('duration'), description: 'Time allowed to connect' },
      keepaliveInterval: { ...ref('duration'), description: 'Interval between SSH keepalives' },
      jump: {
        type: 'string',
        minLength: 1,
        description: 'ProxyJump: an inventory host name, or [user@]address[:port]',
      },
    },
    additionalProperties: false,
  },
  host: {
    type: 'object',
    description: 'One machine of the topology',
    properties: {
      address: { type: 'string', minLength: 1, description: 'IP address or DNS name' },
      role: { enum: [...ROLES], description: 'primary (exactly one), standby, repository or drill' },
      upstream: { type: 'string', minLength: 1, description: 'For a standby: the host it streams from' },
      pgdata: {
        type: 'string',
        minLength: 1,
        description: 'Data directory (required for primary, standby, drill; with layout debian optional for primary and standby)',
      },
      connection: ref('connection'),
      postgres: ref('postgresOverride'),
      vars: { type: 'object', description: 'Free variables for this host' },
    },
    required: ['address', 'role'],
    additionalProperties: false,
  },
};

/** JSON Schema of inventory.yml (draft-07, so yaml-language-server can complete it). */
export function buildInventorySchema(): JsonSchema {
  return {
    $schema: DRAFT_07,
    $id: `${SCHEMA_BASE_URL}inventory.schema.json`,
    title: 'pgplay inventory',
    description: 'The topology of one PostgreSQL cluster: hosts, roles, connection, replication and backup',
    type: 'object',
    properties: {
      cluster: {
        type: 'string',
        pattern: NAME_PATTERN,
        errorMessage: `a cluster name ${NAME_EXPECTED}`,
        description: 'Cluster name; also the default pgBackRest stanza',
      },
      postgres: ref('postgres'),
      connection: ref('connection'),
      replication: {
        type: 'object',
        description: 'Streaming replication',
        properties: {
          user: { type: 'string', minLength: 1, description: 'Replication role' },
          password: { ...ref('secretRef'), description: 'Password of the replication role' },
          slots: { type: 'boolean', default: true, description: 'Use a replication slot per standby' },
          maxSlotWalKeepSize: {
            type: 'string',
            pattern: '^(-1|[0-9]+ ?(B|kB|MB|GB|TB)?)$',
            errorMessage: "a size such as '10GB' (B, kB, MB, GB, TB), or '-1' for no limit",
            default: '10GB',
            description:
              'max_slot_wal_keep_size on 13+: the most WAL a replication slot may hold back, so a lost standby cannot fill the disk (postgres.settings overrides it)',
          },
          maxLag: {
            type: 'object',
            description: 'pgplay status: a standby further behind its primary than this is critical',
            properties: {
              bytes: SIZE('WAL not yet replayed on the standby', '64MB'),
              time: AGE('Time since the last replayed transaction while WAL waits to be replayed', '5m'),
            },
            additionalProperties: false,
          },
          maxSlotRetainedWal: SIZE('pgplay status: a replication slot holding back more WAL than this is critical', '1GB'),
        },
        required: ['user'],
        additionalProperties: false,
      },
      backup: {
        type: 'object',
        description: 'Backup repository',
        properties: {
          tool: { enum: ['pgbackrest', 'basebackup', 'barman'], description: 'pgbackrest, basebackup or barman (Barman on backup.repoHost)' },
          barman: BARMAN,
          stanza: { type: 'string', pattern: NAME_PATTERN, description: 'pgBackRest stanza (default: the cluster name)' },
          repoHost: { type: 'string', minLength: 1, description: 'Inventory host that holds the repository' },
          repoPath: {
            type: 'string',
            minLength: 1,
            description: 'Repository path (default /var/lib/pgbackrest with pgbackrest, /var/lib/pgplay/backups with basebackup, /var/lib/pgplay/backups with barman: there pgplay keeps the globals exports; Barman keeps its backups in its own barman_home)',
          },
          retention: {
            type: 'object',
            description: 'How many backups to keep',
            properties: {
              full: { type: 'integer', minimum: 1, description: 'Full backups to keep' },
              diff: { type: 'integer', minimum: 1, description: 'Differential backups to keep' },
            },
            additionalProperties: false,
          },
          fromStandby: { type: 'boolean', default: false, description: 'Take backups from a standby' },
          processMax: { type: 'integer', minimum: 1, description: 'Parallel processes for backup and restore' },
          compressType: { enum: ['none', 'bz2', 'gz', 'lz4', 'zst'], description: 'Compression' },
          cipherPass: { ...ref('secretRef'), description: 'Repository encryption passphrase' },
          options: { ...SCALAR_MAP, description: 'Extra pgbackrest.conf [global] options' },
          maxAge: {
            type: 'object',
            description: 'pgplay status: the newest backup of each type (any: of any type) older than this is critical',
            properties: {
              full: AGE('Newest full backup', '8d'),
              diff: AGE('Newest differential backup (not checked unless set)'),
              incr: AGE('Newest incremental backup (not checked unless set)'),
              any: AGE('Newest backup of any type', '26h'),
            },
            additionalProperties: false,
          },
          pitrWindow: AGE('pgplay status: how far back a point-in-time recovery must reach; the oldest full backup must be at least this old (not checked unless set)'),
        },
        required: ['tool'],
        additionalProperties: false,
      },
      hosts: {
        type: 'object',
        description: 'The hosts, by name',
        minProperties: 1,
        propertyNames: { pattern: NAME_PATTERN, errorMessage: `a host name ${NAME_EXPECTED}` },
        additionalProperties: ref('host'),
      },
      vars: { type: 'object', default: {}, description: 'Free variables for templates and playbooks' },
      drills: {
        type: 'object',
        description: 'Restore drills (pitr-drill.yml)',
        properties: {
          maxAge: AGE('pgplay status: the last drill older than this, or one that did not pass, is critical', '35d'),
          rtoRegression: {
            type: 'number',
            minimum: 0,
            default: 25,
            description: 'Percent: a drill whose RTO grew more than this over the previous passed drill of the cluster is flagged as a slowdown in its report',
          },
          rto: AGE('Recovery time objective: the drill report says whether the RTO (restore start to the first query on the promoted copy) met it'),
          rpo: AGE("Recovery point objective: the drill report says whether the RPO (the primary's position at the drill's start to the copy's recovery point) met it"),
        },
        additionalProperties: false,
      },
      monitoring: {
        type: 'object',
        description: 'Thresholds of pgplay status that belong to no other section',
        properties: { maxClockSkew: AGE('Clock difference between a host and the machine running pgplay that is critical', '5s') },
        additionalProperties: false,
      },
    },
    required: ['cluster', 'postgres', 'hosts'],
    additionalProperties: false,
    definitions,
  };
}
