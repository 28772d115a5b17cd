/**
 * The pgbackrest action's input: its JSON Schema, and the checks a schema cannot express (which keys
 * belong to which command, targets that need a type, settings that depend on the PostgreSQL major).
 */
import { PgplayError } from '../../core/errors.js';
import type { Host, Inventory } from '../../model/inventory.js';
import { resolvePgbackrest } from '../../postgres/pgbackrest-config.js';
import { versionFacts } from '../../postgres/versions.js';
import type { JsonSchema } from '../types.js';

export const COMMANDS = ['stanza-create', 'check', 'backup', 'expire', 'info', 'restore', 'verify', 'stop', 'start'] as const;
export type PgbackrestCommand = (typeof COMMANDS)[number];

export const BACKUP_TYPES = ['full', 'diff', 'incr'] as const;
export const RESTORE_TYPES = ['default', 'immediate', 'lsn', 'name', 'xid', 'time', 'preserve', 'standby', 'none'] as const;
/** Restore types that recover to a point given by `target`. */
export const TARGETED_TYPES = ['lsn', 'name', 'xid', 'time'];

type Scalar = string | number | boolean;

export interface PgbackrestInput {
  command: PgbackrestCommand;
  stanza?: string;
  type?: string;
  target?: string;
  target_action?: 'pause' | 'promote' | 'shutdown';
  target_exclusive?: boolean;
  target_timeline?: string | number;
  set?: string;
  delta?: boolean;
  force?: boolean;
  recovery_options?: Record<string, Scalar>;
  archive_mode?: 'off' | 'preserve';
  config?: string;
  process_max?: number;
  start_fast?: boolean;
  allow_primary?: boolean;
  replace?: boolean;
  replace_sysid?: string;
  all?: boolean;
  options?: Record<string, Scalar | Scalar[]>;
}

const scalar = { type: ['string', 'number', 'boolean'] };

export const inputSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['command'],
  properties: {
    command: {
      enum: [...COMMANDS],
      description:
        'stanza-create (ok when the stanza exists), check (read-only), backup (always a change), expire (a change when it removes something), ' +
        'info (read-only, parsed JSON), restore (destructive, guarded), verify (fails on any error it reports), stop / start (the stop file).',
    },
    stanza: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', description: 'Stanza; default the inventory backup.stanza, else the cluster name.' },
    type: {
      enum: [...new Set<string>([...BACKUP_TYPES, ...RESTORE_TYPES])],
      description: 'backup: full | diff | incr (pgBackRest default incr, full when none exists). restore: default | immediate | lsn | name | xid | time | preserve | standby | none.',
    },
    target: { type: 'string', minLength: 1, description: 'restore: the recovery target for type lsn, name, xid or time.' },
    target_action: { enum: ['pause', 'promote', 'shutdown'], description: 'restore: what the server does when the target is reached.' },
    target_exclusive: { type: 'boolean', description: 'restore: stop just before the target (time, xid, lsn; false is the default and fits any type).' },
    target_timeline: { type: ['string', 'integer'], description: "restore: timeline to recover along: current, latest or a number ('': PostgreSQL's default)." },
    set: { type: 'string', minLength: 1, description: 'restore: backup set label (default latest). expire: expire this set.' },
    delta: { type: 'boolean', description: 'restore (or backup) using checksums; restore over a non-empty PGDATA needs it.' },
    force: { type: 'boolean', description: 'restore: overwrite PGDATA (with delta: compare by size and time). stop: also terminate running pgBackRest processes.' },
    recovery_options: {
      type: 'object',
      additionalProperties: scalar,
      description: 'restore: recovery settings, each passed as --recovery-option=key=value. standby_mode is refused on 12+ (use type: standby).',
    },
    archive_mode: {
      enum: ['off', 'preserve'],
      description:
        'restore: off keeps the restored copy from archiving into the repository (pgBackRest --archive-mode from 12; on 11, which pgBackRest cannot do it for, ' +
        "pgplay appends archive_mode = 'off' to the restored postgresql.auto.conf). preserve keeps the backup's setting.",
    },
    config: { type: 'string', pattern: '^/', description: 'pgbackrest.conf path (--config); default host var pgbackrest_config, else inventory var pgbackrest_config, else pgBackRest\'s own default.' },
    process_max: { type: 'integer', minimum: 1, maximum: 999, description: 'Processes for compression and transfer.' },
    start_fast: { type: 'boolean', description: 'backup: request an immediate checkpoint.' },
    allow_primary: {
      type: 'boolean',
      description: 'restore: allow restoring over the inventory primary while it is stopped (rebuilding a fenced old primary, or restoring a lost one). A running cluster is never restored over.',
    },
    replace: {
      type: 'boolean',
      description:
        'restore: the user asked for exactly this host to be rebuilt, so a PGDATA holding another cluster (another system identifier than the primary\'s) may be replaced. ' +
        'Without it that is refused (exit 3). Never lifts the refusal to restore into another inventory host\'s PGDATA or over a running server. ' +
        'Only a cluster without user data (a freshly created one) is replaced; one with user data needs replace_sysid too.',
    },
    replace_sysid: {
      type: 'string',
      pattern: '^([0-9]+)?$',
      description:
        'restore, with replace: the system identifier of the other cluster in PGDATA that may be replaced although it holds user data (databases, tables or tablespaces made after initdb). Empty: only a cluster without user data is replaced.',
    },
    all: { type: 'boolean', description: 'stop / start: every stanza on the host (the all.stop file) instead of one.' },
    options: {
      type: 'object',
      additionalProperties: { anyOf: [scalar, { type: 'array', items: scalar }] },
      description: 'Extra pgBackRest options as key: value (--key=value; true --key, false --no-key, a list repeats the option).',
    },
  },
  allOf: [
    {
      if: { properties: { command: { const: 'backup' } }, required: ['command'] },
      then: { properties: { type: { enum: [...BACKUP_TYPES] } } },
    },
    {
      if: { properties: { command: { const: 'restore' } }, required: ['command'] },
      then: { properties: { type: { enum: [...RESTORE_TYPES] } } },
    },
  ],
};

/** Keys that only make sense with some commands; a key outside its command is a mistake worth naming. */
const COMMAND_KEYS: Record<string, readonly PgbackrestCommand[]> = {
  type: ['backup', 'restore'],
  target: ['restore'],
  target_action: ['restore'],
  target_exclusive: ['restore'],
  target_timeline: ['restore'],
  set: ['restore', 'expire'],
  delta: ['restore', 'backup'],
  force: ['restore', 'stop'],
  recovery_options: ['restore'],
  archive_mode: ['restore'],
  process_max: ['backup', 'restore', 'verify', 'check', 'stanza-create', 'expire'],
  start_fast: ['backup'],
  allow_primary: ['restore'],
  replace: ['restore'],
  replace_sysid: ['restore'],
};

/** pgBackRest options pgplay sets from typed keys or needs for itself; `options` must not set them. */
const RESERVED_OPTIONS: Record<string, string> = {
  stanza: 'stanza',
  config: 'config',
  type: 'type',
  target: 'target',
  'target-action': 'target_action',
  'target-exclusive': 'target_exclusive',
  'target-timeline': 'target_timeline',
  set: 'set',
  delta: 'delta',
  force: 'force',
  'recovery-option': 'recovery_options',
  'archive-mode': 'archive_mode',
  'process-max': 'process_max',
  'start-fast': 'start_fast',
};
/** Options that would change what pgplay parses. */
const OWNED_OPTIONS = new Set(['log-level-console', 'log-level-stderr', 'output', 'verbose', 'dry-run']);

export interface Resolved {
  stanza: string;
  config?: string;
}

function semantic(message: string, expected?: string, hint?: string): PgplayError {
  return new PgplayError({ code: 'SEMANTIC', message, expected, hint });
}

/**
 * Stanza and config as they apply to this host: the input, else the host's resolved pgbackrest.conf
 * (host var pgbackrest_config, else the inventory var). pgBackRest's own default is not passed, so that
 * pgBackRest keeps its fallback to /etc/pgbackrest.conf where pgplay did not write the config.
 */
export function resolveInput(input: PgbackrestInput, host: Host, inventory: Inventory): Resolved {
  const stanza = input.stanza ?? inventory.backup?.stanza ?? inventory.cluster;
  const fromVars = host.vars.pgbackrest_config ?? inventory.vars?.pgbackrest_config;
  if (input.config === undefined && fromVars !== undefined && (typeof fromVars !== 'string' || !fromVars.startsWith('/'))) {
    throw semantic(`the pgbackrest_config variable must be an absolute path, got ${JSON.stringify(fromVars)}`, 'a path such as /etc/pgbackrest/pgbackrest.conf');
  }
  const resolved = host.pgbackrest ?? resolvePgbackrest(host.vars, inventory);
  const config = input.config ?? (resolved.configIsDefault ? undefined : resolved.config);
  return config === undefined ? { stanza } : { stanza, config };
}

/** Everything the schema cannot say; throws a SEMANTIC error naming the key. */
export function validateInput(input: PgbackrestInput, host: Host): void {
  for (const [key, commands] of Object.entries(COMMAND_KEYS)) {
    const value = (input as unknown as Record<string, unknown>)[key];
    // allow_primary: false says nothing about the command, so it may stand anywhere.
    if (value === undefined || (value === false && key === 'allow_primary')) continue;
    if (!commands.includes(input.command)) {
      throw semantic(`${key} does not apply to pgbackrest ${input.command}`, `${key} only with command ${commands.join(' or ')}`);
    }
  }
  if (input.all && input.command !== 'stop' && input.command !== 'start') {
    throw semantic(`all does not apply to pgbackrest ${input.command}`, 'all only with command stop or start');
  }
  if (input.command === 'backup' && input.type !== undefined && !(BACKUP_TYPES as readonly string[]).includes(input.type)) {
    throw semantic(`backup type "${input.type}" is not a backup type`, BACKUP_TYPES.join(', '));
  }
  if (input.command === 'restore') validateRestore(input, host);
  for (const key of Object.keys(input.options ?? {})) validateOptionKey(key);
}

function validateRestore(input: PgbackrestInput, host: Host): void {
  const type = input.type ?? 'default';
  if (!(RESTORE_TYPES as readonly string[]).includes(type)) throw semantic(`restore type "${type}" is not a restore type`, RESTORE_TYPES.join(', '));
  const targeted = TARGETED_TYPES.includes(type);
  if (targeted && input.target === undefined) {
    throw semantic(`restore type ${type} needs a target`, `target: the ${type === 'name' ? 'restore point name' : type} to recover to`);
  }
  if (!targeted && input.target !== undefined) {
    throw semantic(`target does not apply to restore type ${type}`, `type ${TARGETED_TYPES.join(', ')} with a target`);
  }
  if (input.target_action !== undefined && !targeted && type !== 'immediate') {
    throw semantic(`target_action does not apply to restore type ${type}`, 'type immediate, lsn, name, xid or time');
  }
  // false is pgBackRest's default and says nothing, so a playbook may pass its param for every type.
  if (input.target_exclusive === true && !['time', 'xid', 'lsn'].includes(type)) {
    throw semantic(`target_exclusive does not apply to restore type ${type}`, 'type time, xid or lsn');
  }
  if (input.target_timeline !== undefined && !/^(|current|latest|\d+|0x[0-9A-Fa-f]+)$/.test(String(input.target_timeline))) {
    throw semantic(`target_timeline "${input.target_timeline}" is not a timeline`, 'current, latest or a timeline number');
  }
  const facts = versionFacts(host.postgres.version);
  for (const [key, value] of Object.entries(input.recovery_options ?? {})) {
    if (!/^[a-z_][a-z0-9_]*$/.test(key)) throw semantic(`recovery option "${key}" is not a setting name`, 'lower-case PostgreSQL setting names');
    if (key === 'standby_mode' && !facts.standbyMode) {
      throw semantic(
        `recovery option standby_mode does not exist on PostgreSQL ${facts.major}: the server refuses to start with it`,
        'type: standby (pgBackRest then writes standby.signal)',
      );
    }
    if (key.startsWith('recovery_target')) {
      throw semantic(`recovery option ${key} is set by type and target`, 'type, target, target_action, target_exclusive, target_timeline');
    }
    if (/\bpassword\s*=/i.test(String(value))) {
      throw semantic(
        `recovery option ${key} contains a password`,
        'a conninfo without password',
        'put the password in the OS user\'s .pgpass (mode 0600): a password on the command line is visible to every local user',
      );
    }
  }
}

function validateOptionKey(key: string): void {
  if (!/^[a-z][a-z0-9-]*$/.test(key)) throw semantic(`pgbackrest option "${key}" is not an option name`, 'lower-case pgBackRest option names such as archive-timeout');
  if (/cipher-pass$/.test(key)) {
    throw semantic(
      `pgbackrest option ${key} is a secret and never goes on the command line`,
      'backup.cipherPass in the inventory ({env: NAME} or {file: PATH})',
      'pgplay hands the passphrase to pgBackRest in its environment',
    );
  }
  const typed = RESERVED_OPTIONS[key];
  if (typed) throw semantic(`pgbackrest option ${key} has its own key`, `${typed}: ...`);
  if (OWNED_OPTIONS.has(key)) throw semantic(`pgbackrest option ${key} is set by pgplay, which reads pgBackRest's output`);
}

/** --key=value arguments for `options`: true is --key, false --no-key, a list repeats the option. */
export function optionArgs(options: Record<string, Scalar | Scalar[]> | undefined): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(options ?? {})) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v === true) out.push(`--${key}`);
      else if (v === false) out.push(`--no-${key}`);
      else out.push(`--${key}=${v}`);
    }
  }
  return out;
}

/** A recovery option's value as PostgreSQL reads it: booleans as on/off. */
export function recoveryOptionArgs(options: Record<string, Scalar> | undefined): string[] {
  return Object.entries(options ?? {}).map(([k, v]) => `--recovery-option=${k}=${typeof v === 'boolean' ? (v ? 'on' : 'off') : v}`);
}
