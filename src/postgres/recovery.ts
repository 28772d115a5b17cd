/**
 * The files that put a PostgreSQL server into standby or targeted recovery, right for its major:
 *
 * - 11 and older: recovery.conf in PGDATA, with standby_mode = 'on' for a standby. The settings must
 *   not be in postgresql.conf (11 does not know them there and refuses to start), so pgplay's 12+
 *   settings file is removed.
 * - 12 and newer: the settings in a file included from postgresql.conf, plus an empty standby.signal
 *   or recovery.signal. Never standby_mode (12+ refuses to start with it), never a recovery.conf
 *   (same), never promote_trigger_file (16 removed it; pgplay promotes with pg_ctl / pg_promote()),
 *   and exactly one recovery_target* (12+ refuses more).
 *
 * The values are checked here; the text comes from templates/recovery.conf.hbs and
 * templates/recovery-settings.conf.hbs, quoted by the pgconf helper.
 */
import { PgplayError } from '../core/errors.js';
import { SHIPPED_TEMPLATES } from '../core/paths.js';
import { createRenderer, type Renderer } from '../render/index.js';
import { assertNoSecretInConninfo } from './conninfo.js';
import { applyByForSetting, versionFacts, type ApplyBy } from './versions.js';

export type RecoveryTargetType = 'immediate' | 'time' | 'name' | 'xid' | 'lsn';
export type RecoveryTargetAction = 'pause' | 'promote' | 'shutdown';

export interface RecoveryTarget {
  type: RecoveryTargetType;
  /** The time, restore point name, transaction id or LSN; none for immediate. */
  value?: string;
  /** Stop just after (true, PostgreSQL's default) or just before the target; time, xid and lsn only. */
  inclusive?: boolean;
  /** What the server does once the target is reached; PostgreSQL's default is pause. */
  action?: RecoveryTargetAction;
  /** 'latest', 'current' or a timeline id. */
  timeline?: 'latest' | 'current' | number;
}

export interface RecoveryInput {
  version: number;
  mode: 'standby' | 'recovery';
  /** libpq conninfo of the upstream; must not hold a password (.pgpass does). Standby only. */
  primaryConninfo?: string;
  primarySlotName?: string;
  /** e.g. `pgbackrest --stanza=main archive-get %f "%p"`; required for targeted recovery. */
  restoreCommand?: string;
  target?: RecoveryTarget;
  /** Further recovery settings (recovery_min_apply_delay, archive_cleanup_command, ...). */
  extra?: Record<string, string | number | boolean>;
  /**
   * Where the 12+ settings file goes: relative to PGDATA or absolute (for layouts such as Debian's,
   * whose postgresql.conf and conf.d live in /etc). It must be inside a directory that
   * postgresql.conf includes (include_dir = 'conf.d').
   */
  settingsPath?: string;
}

export interface RecoverySetting {
  name: string;
  value: string | number | boolean;
}

export interface RecoveryFile {
  /** Relative to PGDATA unless absolute. */
  path: string;
  content: string;
  mode: number;
}

export interface RecoveryPlan {
  version: number;
  layout: 'recovery.conf' | 'signal-files';
  settings: RecoverySetting[];
  /** Files to write (atomically, owned by the cluster's OS user). */
  files: RecoveryFile[];
  /** Files to delete if present: leftovers that would change or break what `files` set up. */
  remove: string[];
}

export const DEFAULT_SETTINGS_PATH = 'conf.d/pgplay-recovery.conf';
export const RECOVERY_FILE_MODE = 0o600;

const TARGET_ACTIONS: readonly RecoveryTargetAction[] = ['pause', 'promote', 'shutdown'];
const TARGET_TYPES: readonly RecoveryTargetType[] = ['immediate', 'time', 'name', 'xid', 'lsn'];

function invalid(message: string, expected?: string): PgplayError {
  return new PgplayError({ code: 'SEMANTIC', message, expected });
}

function targetSetting(t: RecoveryTarget): RecoverySetting {
  if (!TARGET_TYPES.includes(t.type)) throw invalid(`unknown recovery target type "${t.type}"`, TARGET_TYPES.join(', '));
  const value = t.value?.trim();
  if (t.type === 'immediate') {
    if (value) throw invalid('a recovery target of type immediate takes no value', 'no target value');
    return { name: 'recovery_target', value: 'immediate' };
  }
  if (!value) throw invalid(`a recovery target of type ${t.type} needs a value`, expectedValue(t.type));
  if (/[\r\n]/.test(value)) throw invalid(`the recovery target ${t.type} contains a line break`, expectedValue(t.type));
  switch (t.type) {
    case 'time':
      if (!/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*([+-]\d{2}(:?\d{2})?|Z|[A-Za-z][A-Za-z_/+-]*)?$/.test(value)) {
        throw invalid(`"${value}" is not a timestamp PostgreSQL reads`, expectedValue('time'));
      }
      return { name: 'recovery_target_time', value };
    case 'name':
      // pg_create_restore_point() names are at most 63 bytes (MAXFNAMELEN - 1).
      if (Buffer.byteLength(value) > 63) throw invalid(`restore point name "${value}" is longer than 63 bytes`, expectedValue('name'));
      return { name: 'recovery_target_name', value };
    case 'xid':
      if (!/^\d+$/.test(value)) throw invalid(`"${value}" is not a transaction id`, expectedValue('xid'));
      return { name: 'recovery_target_xid', value };
    case 'lsn':
      if (!/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(value)) throw invalid(`"${value}" is not an LSN`, expectedValue('lsn'));
      return { name: 'recovery_target_lsn', value: value.toUpperCase() };
  }
}

function expectedValue(type: RecoveryTargetType): string {
  switch (type) {
    case 'immediate':
      return 'no value';
    case 'time':
      return "a timestamp with time zone such as '2024-05-01 12:00:00+00'";
    case 'name':
      return 'a restore point name from pg_create_restore_point(), at most 63 bytes';
    case 'xid':
      return 'a transaction id (digits)';
    case 'lsn':
      return "an LSN such as '0/3000060'";
  }
}

/**
 * The ordered, validated recovery settings for a major (what goes into recovery.conf or the
 * included settings file). Throws SEMANTIC PgplayErrors for inputs PostgreSQL would refuse.
 */
export function recoverySettings(input: RecoveryInput): RecoverySetting[] {
  const f = versionFacts(input.version);
  const out: RecoverySetting[] = [];
  const { mode, target } = input;
  if (mode !== 'standby' && mode !== 'recovery') throw invalid(`unknown recovery mode "${String(mode)}"`, 'standby or recovery');

  if (mode === 'standby' && !input.primaryConninfo && !input.restoreCommand) {
    throw invalid('a standby needs primary_conninfo (streaming) or restore_command (archive) or both', 'primaryConninfo and/or restoreCommand');
  }
  if (mode === 'recovery') {
    // PostgreSQL itself refuses recovery.signal / recovery.conf without restore_command.
    if (!input.restoreCommand) throw invalid('targeted recovery needs a restore_command to fetch archived WAL', 'restoreCommand');
    if (input.primaryConninfo || input.primarySlotName) {
      throw invalid('primary_conninfo and primary_slot_name only apply to a standby', 'mode standby, or no primaryConninfo/primarySlotName');
    }
  }

  if (f.standbyMode && mode === 'standby') out.push({ name: 'standby_mode', value: 'on' });
  if (input.primaryConninfo !== undefined) {
    assertNoSecretInConninfo(input.primaryConninfo);
    if (/[\r\n]/.test(input.primaryConninfo)) throw invalid('primary_conninfo contains a line break', 'a one-line libpq conninfo');
    out.push({ name: 'primary_conninfo', value: input.primaryConninfo });
  }
  if (input.primarySlotName !== undefined) {
    if (!/^[a-z0-9_]{1,63}$/.test(input.primarySlotName)) {
      throw invalid(`"${input.primarySlotName}" is not a valid replication slot name`, 'lower-case letters, digits and _, at most 63');
    }
    out.push({ name: 'primary_slot_name', value: input.primarySlotName });
  }
  if (input.restoreCommand !== undefined) {
    if (!input.restoreCommand.trim() || /[\r\n]/.test(input.restoreCommand)) {
      throw invalid('restore_command is empty or spans lines', "one command line using %f and %p, e.g. pgbackrest --stanza=main archive-get %f \"%p\"");
    }
    out.push({ name: 'restore_command', value: input.restoreCommand });
  }

  if (target) {
    out.push(targetSetting(target));
    if (target.inclusive !== undefined) {
      if (!['time', 'xid', 'lsn'].includes(target.type)) {
        throw invalid(`inclusive does not apply to a recovery target of type ${target.type}`, 'inclusive only with time, xid or lsn');
      }
      out.push({ name: 'recovery_target_inclusive', value: target.inclusive });
    }
  }

  const timeline = target?.timeline ?? (mode === 'standby' && f.defaultRecoveryTargetTimeline === 'current' ? 'latest' : undefined);
  if (timeline !== undefined) {
    const ok = timeline === 'latest' || timeline === 'current' || (typeof timeline === 'number' && Number.isInteger(timeline) && timeline > 0);
    if (!ok) throw invalid(`"${String(timeline)}" is not a recovery timeline`, "'latest', 'current' or a timeline id");
    out.push({ name: 'recovery_target_timeline', value: String(timeline) });
  }

  if (target?.action !== undefined) {
    if (!TARGET_ACTIONS.includes(target.action)) throw invalid(`unknown recovery target action "${target.action}"`, TARGET_ACTIONS.join(', '));
    out.push({ name: 'recovery_target_action', value: target.action });
  }

  for (const [name, value] of Object.entries(input.extra ?? {})) {
    if (!/^[a-z_][a-z0-9_.]*$/.test(name)) throw invalid(`"${name}" is not a setting name`, 'lower-case letters, digits, _ and .');
    if (out.some((s) => s.name === name)) throw invalid(`recovery setting ${name} is given twice`);
    if (name === 'standby_mode') {
      throw invalid('standby_mode is not set by hand', f.standbyMode ? "mode: 'standby'" : "mode: 'standby' (PostgreSQL 12+ uses standby.signal and refuses standby_mode)");
    }
    if (name.startsWith('recovery_target')) throw invalid(`${name} is set through the recovery target`, 'target: {type, value, inclusive, action, timeline}');
    if (name === 'promote_trigger_file' || name === 'trigger_file') {
      const allowed = f.promoteTriggerSetting;
      if (allowed !== name) {
        throw invalid(
          `${name} does not exist in PostgreSQL ${input.version}`,
          allowed ? allowed : 'promotion by pg_ctl promote or pg_promote() (PostgreSQL 16 removed promote_trigger_file)',
        );
      }
    }
    if (name === 'primary_conninfo' || name === 'primary_slot_name' || name === 'restore_command') {
      throw invalid(`${name} has its own input`, name === 'primary_conninfo' ? 'primaryConninfo' : name === 'primary_slot_name' ? 'primarySlotName' : 'restoreCommand');
    }
    out.push({ name, value });
  }
  return out;
}

let defaultRenderer: Renderer | undefined;

/** The files (and leftovers to remove) that make a server a standby or run a targeted recovery. */
export async function recoveryFiles(input: RecoveryInput, renderer?: Renderer): Promise<RecoveryPlan> {
  const f = versionFacts(input.version);
  const settings = recoverySettings(input);
  const r = renderer ?? (defaultRenderer ??= createRenderer({ templateDirs: [SHIPPED_TEMPLATES] }));
  const settingsPath = input.settingsPath ?? DEFAULT_SETTINGS_PATH;
  const signal = input.mode === 'standby' ? 'standby.signal' : 'recovery.signal';
  const context = { version: input.version, mode: input.mode, settings, signalFile: signal, settingsPath };

  if (f.recoveryConfig === 'recovery.conf') {
    return {
      version: input.version,
      layout: 'recovery.conf',
      settings,
      files: [{ path: 'recovery.conf', content: await r.renderFile('recovery.conf.hbs', context), mode: RECOVERY_FILE_MODE }],
      // 11 does not know these settings in postgresql.conf and would refuse to start.
      remove: [settingsPath],
    };
  }
  return {
    version: input.version,
    layout: 'signal-files',
    settings,
    files: [
      { path: settingsPath, content: await r.renderFile('recovery-settings.conf.hbs', context), mode: RECOVERY_FILE_MODE },
      { path: signal, content: '', mode: RECOVERY_FILE_MODE },
    ],
    // standby.signal wins over recovery.signal, and a recovery.conf stops 12+ from starting.
    remove: [input.mode === 'standby' ? 'recovery.signal' : 'standby.signal', 'recovery.conf'],
  };
}

/**
 * How a running server picks up a change from `before` to `after` settings: a reload when every
 * changed setting reloads on this major (primary_conninfo on 13+, restore_command on 14+), else a
 * restart. Entering or leaving recovery (a new signal file, a new recovery.conf) always restarts.
 */
export function recoveryChangeApplyBy(version: number, before: RecoverySetting[], after: RecoverySetting[]): ApplyBy | 'none' {
  const f = versionFacts(version);
  if (f.recoveryConfig === 'recovery.conf') {
    // recovery.conf is read only at startup.
    return sameSettings(before, after) ? 'none' : 'restart';
  }
  const a = new Map(before.map((s) => [s.name, String(s.value)]));
  const b = new Map(after.map((s) => [s.name, String(s.value)]));
  const changed = [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k));
  if (changed.length === 0) return 'none';
  return changed.every((k) => applyByForSetting(version, k) === 'reload') ? 'reload' : 'restart';
}

function sameSettings(a: RecoverySetting[], b: RecoverySetting[]): boolean {
  return a.length === b.length && a.every((s, i) => s.name === b[i]!.name && String(s.value) === String(b[i]!.value));
}
