import { posix } from 'node:path';
import { PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import { ensureIncludeDir } from '../postgres/config.js';
import { buildConninfo, type ConninfoInput } from '../postgres/conninfo.js';
import {
  DEFAULT_SETTINGS_PATH,
  recoveryChangeApplyBy,
  recoveryFiles,
  type RecoveryInput,
  type RecoverySetting,
  type RecoveryTarget,
} from '../postgres/recovery.js';
import { versionFacts } from '../postgres/versions.js';
import { pgconfValue } from '../render/quote.js';
import { unifiedDiff } from './diff.js';
import { defaultPgpassPath } from './pgpass.js';
import { commandFailed, requirePgdata, runAsOwner } from '../postgres/owner.js';
import { commandLine, writeFileLines } from './shell-export.js';
import { formatMode } from './template.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface RecoveryActionInput {
  mode?: 'standby' | 'recovery';
  upstream?: string;
  slot?: string | boolean;
  restore_command?: string;
  target?: RecoveryTarget;
  application_name?: string;
  passfile?: string;
  sslmode?: ConninfoInput['sslmode'];
  settings?: Record<string, string | number | boolean>;
  settings_path?: string;
  config_file?: string;
}

export const recoveryAction: Action<RecoveryActionInput> = {
  name: 'recovery',
  // Recovery settings and signal files: the server reads them at its next start (the postgres step refreshes then).
  changes: [],
  summary:
    'Writes the recovery settings that make a server a standby (or run a targeted recovery), right for its major version: ' +
    'recovery.conf up to 11; an included settings file plus standby.signal / recovery.signal from 12. primary_conninfo never ' +
    'holds a password (passfile= names the .pgpass). Reports whether a running server needs a reload or a restart.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      mode: {
        type: 'string',
        enum: ['standby', 'recovery'],
        default: 'standby',
        description: 'standby: follow an upstream (streaming and/or restore_command). recovery: replay archived WAL up to a target, then act (target.action).',
      },
      upstream: {
        type: 'string',
        minLength: 1,
        description: 'Inventory host to stream from (standby). Default: the host\'s upstream in the inventory. Its address and port go into primary_conninfo.',
      },
      slot: {
        type: ['string', 'boolean'],
        pattern: '^[a-z0-9_]{1,63}$',
        description:
          'primary_slot_name. true: pgplay_<host name>; false: none. Default: pgplay_<host name> when the inventory has replication.slots: true.',
      },
      restore_command: {
        type: 'string',
        minLength: 1,
        description: 'Fetches archived WAL, e.g. pgbackrest --stanza=main archive-get %f "%p". Required for mode recovery.',
      },
      target: {
        type: 'object',
        additionalProperties: false,
        required: ['type'],
        description: 'Recovery target (mode recovery).',
        properties: {
          type: { type: 'string', enum: ['immediate', 'time', 'name', 'xid', 'lsn'] },
          value: { type: 'string', description: 'The time, restore point name, transaction id or LSN; none for immediate.' },
          inclusive: { type: 'boolean', description: 'Stop just after (true, the default) or just before the target; time, xid and lsn only.' },
          action: { type: 'string', enum: ['pause', 'promote', 'shutdown'], description: 'What the server does at the target (PostgreSQL\'s default: pause).' },
          timeline: { anyOf: [{ type: 'string', enum: ['latest', 'current'] }, { type: 'integer', minimum: 1 }] },
        },
      },
      application_name: {
        type: 'string',
        minLength: 1,
        description: 'How the upstream\'s pg_stat_replication names this standby. Default: the host name.',
      },
      passfile: {
        type: 'string',
        pattern: '^/',
        description: 'The .pgpass file named in primary_conninfo (passfile=). Default: .pgpass in the home of postgres.osUser, as the pgpass action writes it.',
      },
      sslmode: { type: 'string', enum: ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'], description: 'sslmode in primary_conninfo.' },
      settings: {
        type: 'object',
        additionalProperties: { type: ['string', 'number', 'boolean'] },
        description: 'Further recovery settings, e.g. recovery_min_apply_delay, archive_cleanup_command.',
      },
      settings_path: {
        type: 'string',
        pattern: '/',
        description: `PostgreSQL 12+: where the settings file goes, relative to PGDATA or absolute, inside a directory that postgresql.conf includes (default <configDir>/${DEFAULT_SETTINGS_PATH}: in PGDATA for the pgdata layout, in /etc/postgresql/<v>/<cluster> for debian).`,
      },
      config_file: {
        type: 'string',
        pattern: '^/',
        description: "PostgreSQL 12+: the postgresql.conf that must include the settings directory (default the layout's: <configDir>/postgresql.conf, PGDATA's in the pgdata layout). pgplay adds an include_dir line when it is missing.",
      },
    },
  },

  async check(ctx, input) {
    return outcome(ctx, await plan(ctx, input), false);
  },

  // The files as the plan rendered them (their content is pgplay's: the settings file, the signal file,
  // an include line), written whole as the PostgreSQL OS user would own them.
  async exportShell(ctx, input) {
    const p = await plan(ctx, input);
    const owner = ctx.host.postgres.osUser;
    const commands = [
      ...p.mkdirs.map((dir) => commandLine(['mkdir', '-p', '-m', '0700', '--', dir], owner)),
      ...p.files.flatMap((f) => writeFileLines(f.path, f.content, { mode: f.mode, owner })),
      ...p.remove.map((path) => commandLine(['rm', '-f', '--', path], owner)),
    ];
    const comments = [`recovery settings for PostgreSQL ${p.version} (${p.layout}); a running server needs: ${p.applyBy}`];
    return { runAlways: true, comments, commands };
  },

  async apply(ctx, input) {
    const p = await plan(ctx, input);
    const owner = ctx.host.postgres.osUser;
    for (const dir of p.mkdirs) {
      const r = await runAsOwner(ctx, ['mkdir', '-p', '-m', '0700', '--', dir], { env: { LC_ALL: 'C' }, timeoutMs: 30_000 });
      if (r.exitCode !== 0) throw commandFailed(`cannot create ${dir}`, r);
    }
    for (const f of p.files) {
      if (f.contentChanged) {
        await ctx.transport.writeFile(f.path, f.content, { mode: f.mode, owner, keepPrevious: f.current !== null && f.content !== '', become: owner });
      } else if (f.attributes.length > 0) {
        const r = await runAsOwner(ctx, ['chmod', formatMode(f.mode), '--', f.path], { env: { LC_ALL: 'C' }, timeoutMs: 30_000 });
        if (r.exitCode !== 0) throw commandFailed(`cannot chmod ${f.path}`, r);
        if (f.attributes.some((a) => a.startsWith('owner'))) {
          const c = await ctx.transport.exec(['chown', owner, '--', f.path], { signal: ctx.signal, timeoutMs: 30_000, env: { LC_ALL: 'C' } });
          if (c.exitCode !== 0) throw commandFailed(`cannot chown ${f.path}`, c);
        }
      }
    }
    for (const path of p.remove) {
      const r = await runAsOwner(ctx, ['rm', '-f', '--', path], { env: { LC_ALL: 'C' }, timeoutMs: 30_000 });
      if (r.exitCode !== 0) throw commandFailed(`cannot remove ${path}`, r);
    }
    return outcome(ctx, p, true);
  },
};

export default recoveryAction;

/** The replication slot pgplay names after a standby: lower-case, [a-z0-9_], at most 63 bytes. */
export function defaultSlotName(hostName: string): string {
  return ('pgplay_' + hostName.toLowerCase().replace(/[^a-z0-9_]/g, '_')).slice(0, 63);
}

/** The slot a standby uses: explicit name, true (default name), false (none), else the inventory's replication.slots. */
export function slotFor(ctx: ActionContext, slot: string | boolean | undefined): string | undefined {
  if (typeof slot === 'string') return slot;
  if (slot === false) return undefined;
  if (slot === true || ctx.inventory.replication?.slots === true) return defaultSlotName(ctx.host.name);
  return undefined;
}

interface FilePlan {
  /** recovery: recovery.conf or the settings file; signal: standby.signal / recovery.signal; config: postgresql.conf. */
  kind: 'recovery' | 'signal' | 'config';
  /** Absolute. */
  path: string;
  /** Relative to PGDATA when inside it, for messages. */
  shown: string;
  content: string;
  mode: number;
  current: string | null;
  contentChanged: boolean;
  attributes: string[];
}

interface Plan {
  version: number;
  layout: 'recovery.conf' | 'signal-files';
  settings: RecoverySetting[];
  files: FilePlan[];
  remove: string[];
  mkdirs: string[];
  applyBy: 'none' | 'reload' | 'restart';
  overridden: string[];
  primaryConninfo?: string;
  pgdata: string;
}

async function plan(ctx: ActionContext, input: RecoveryActionInput): Promise<Plan> {
  const host = ctx.host;
  const pgdata = requirePgdata(host);
  const owner = host.postgres.osUser;
  const read = async (path: string) => (await ctx.transport.readFile(path, { become: owner }))?.toString('utf8') ?? null;
  const mode = input.mode ?? 'standby';
  const upstreamName = mode === 'standby' ? (input.upstream ?? host.upstream) : undefined;
  // Every read over SSH is a round trip (a session, a shell, an exec): the reads that do not depend on
  // each other go out together. The version's refusal comes first, as when they were made one by one.
  const [version, passfile] = await inOrder([
    clusterVersion(ctx, pgdata, read),
    // Looked up only when the checks below will pass (they refuse as before when they do not).
    upstreamName && ctx.hosts[upstreamName] && upstreamName !== host.name && ctx.inventory.replication?.user && input.passfile === undefined
      ? defaultPgpassPath(ctx)
      : Promise.resolve(input.passfile),
  ] as const);

  let primaryConninfo: string | undefined;
  let slot: string | undefined;
  if (mode === 'standby') {
    if (upstreamName) {
      const upstream = upstreamHost(ctx, upstreamName);
      const user = ctx.inventory.replication?.user;
      if (!user) {
        throw new PgplayError({ code: 'SEMANTIC', message: 'streaming from an upstream needs replication.user in the inventory', expected: 'replication: {user, password}' });
      }
      primaryConninfo = buildConninfo({
        host: upstream.address,
        port: upstream.postgres.port,
        user,
        applicationName: input.application_name ?? host.name,
        sslmode: input.sslmode,
        passfile,
      });
      slot = slotFor(ctx, input.slot);
    } else if (!input.restore_command) {
      throw new PgplayError({
        code: 'SEMANTIC',
        message: `${host.name} has no upstream to stream from and no restore_command`,
        expected: 'upstream: <host> (or the host\'s upstream in the inventory), and/or restore_command',
      });
    }
  } else if (input.upstream !== undefined || input.slot !== undefined || input.application_name !== undefined) {
    throw new PgplayError({ code: 'SEMANTIC', message: 'upstream, slot and application_name apply only to mode standby', expected: 'mode: standby' });
  }

  // The layout's config directory (Debian: /etc/postgresql/<v>/<cluster>) holds postgresql.conf and its
  // conf.d; in the pgdata layout that is PGDATA itself, where the relative default lands.
  const layoutConfigDir = host.postgres.configDir ?? pgdata;
  const settingsPath = input.settings_path ?? (layoutConfigDir === pgdata ? DEFAULT_SETTINGS_PATH : posix.join(layoutConfigDir, DEFAULT_SETTINGS_PATH));
  const recInput: RecoveryInput = {
    version,
    mode,
    primaryConninfo,
    primarySlotName: slot,
    restoreCommand: input.restore_command,
    target: input.target,
    extra: input.settings,
    settingsPath,
  };
  const rendered = await recoveryFiles(recInput);
  const abs = (p: string) => (posix.isAbsolute(p) ? p : posix.join(pgdata, p));
  const shownOf = (p: string) => (p.startsWith(pgdata + '/') ? p.slice(pgdata.length + 1) : p);

  const filePlans = rendered.files.map((f) => {
    const path = abs(f.path);
    const kind = f.path.endsWith('.signal') ? 'signal' : 'recovery';
    return filePlan(ctx, kind, path, shownOf(path), f.content, f.mode, read);
  });
  // PostgreSQL 12+: postgresql.conf must include the settings file's directory, which must exist.
  let includeCheck: Promise<{ config?: FilePlan; mkdir?: string }> = Promise.resolve({});
  if (rendered.layout === 'signal-files') {
    const settingsFile = abs(settingsPath);
    const configFile = input.config_file ?? posix.join(layoutConfigDir, 'postgresql.conf');
    const settingsDir = posix.dirname(settingsFile);
    const configDir = posix.dirname(configFile);
    if (settingsDir === configDir) {
      throw new PgplayError({
        code: 'SEMANTIC',
        message: `settings_path ${settingsFile} is beside ${configFile}; it must be in a directory of its own that postgresql.conf includes`,
        expected: `e.g. ${DEFAULT_SETTINGS_PATH}`,
      });
    }
    const includeValue = settingsDir.startsWith(configDir + '/') ? settingsDir.slice(configDir.length + 1) : settingsDir;
    const configPlan = async (): Promise<FilePlan | undefined> => {
      const conf = await read(configFile);
      if (conf === null) {
        if (!ctx.checkMode) {
          throw new PgplayError({
            code: 'STEP_FAILED',
            message: `${configFile} does not exist on ${host.name}`,
            hint: 'restore or copy the cluster first, or name its postgresql.conf with config_file',
          });
        }
        return undefined;
      }
      const ensured = ensureIncludeDir(conf, includeValue);
      if (!ensured.changed) return undefined;
      const st = await ctx.transport.stat(configFile, { become: owner });
      return { kind: 'config', path: configFile, shown: shownOf(configFile), content: ensured.text, mode: st.mode ?? 0o600, current: conf, contentChanged: true, attributes: [] };
    };
    includeCheck = inOrder([configPlan(), ctx.transport.stat(settingsDir, { become: owner })] as const).then(([config, dir]) => ({
      config,
      mkdir: dir.exists ? undefined : settingsDir,
    }));
  }
  const removals = rendered.remove.map(async (r) => {
    const path = abs(r);
    return (await ctx.transport.stat(path, { become: owner })).exists ? path : undefined;
  });
  const autoConf = rendered.layout === 'signal-files' ? read(posix.join(pgdata, 'postgresql.auto.conf')) : Promise.resolve(null);
  const [planned, include, removable, autoConfText] = await inOrder([inOrder(filePlans), includeCheck, inOrder(removals), autoConf] as const);

  const files: FilePlan[] = [...planned, ...(include.config ? [include.config] : [])];
  const includeAdded = include.config !== undefined;
  const mkdirs = include.mkdir ? [include.mkdir] : [];
  const remove = removable.filter((p): p is string => p !== undefined);

  // What a running server needs to see the change.
  const main = files[0]!;
  const before = main.current === null ? [] : parseConfSettings(main.current);
  const after = rendered.settings.map((s) => ({ name: s.name, value: unquote(pgconfValue(s.value)) }));
  // A new signal file or recovery.conf is read only at startup: entering recovery takes a restart.
  const entering = files.some((f) => f.current === null && (f.kind === 'signal' || (f.kind === 'recovery' && rendered.layout === 'recovery.conf')));
  let applyBy: Plan['applyBy'] = recoveryChangeApplyBy(version, includeAdded ? [] : before, after);
  if (entering || remove.length > 0) applyBy = 'restart';

  const overridden =
    rendered.layout === 'signal-files' ? [...parseConfSettingsMap(autoConfText ?? '').keys()].filter((k) => rendered.settings.some((s) => s.name === k)) : [];

  return { version, layout: rendered.layout, settings: rendered.settings, files, remove, mkdirs, applyBy, overridden, primaryConninfo, pgdata };
}

/**
 * Like Promise.all, but waits for every promise and then throws the error of the first one that failed
 * in the given order: reads made together fail as they did one after another, whichever answered first
 * (and none is left running unobserved).
 */
async function inOrder<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

function upstreamHost(ctx: ActionContext, name: string): Host {
  const h = ctx.hosts[name];
  if (!h) throw new PgplayError({ code: 'SEMANTIC', message: `upstream ${name} is not a host of the inventory`, expected: Object.keys(ctx.hosts).join(', ') });
  if (name === ctx.host.name) throw new PgplayError({ code: 'SEMANTIC', message: `${name} cannot stream from itself`, expected: 'another host as upstream' });
  return h;
}

/** The major of the cluster in PGDATA when there is one (it must match the inventory), else the inventory's. */
async function clusterVersion(ctx: ActionContext, pgdata: string, read: (p: string) => Promise<string | null>): Promise<number> {
  const claimed = ctx.host.postgres.version;
  const text = await read(posix.join(pgdata, 'PG_VERSION'));
  if (text === null) {
    versionFacts(claimed);
    return claimed;
  }
  const found = Number(/^\s*(\d+)/.exec(text)?.[1]);
  if (found !== claimed) {
    throw new PgplayError({
      code: 'GUARD',
      message: `${pgdata} on ${ctx.host.name} holds a PostgreSQL ${found || '?'} cluster, but the inventory says ${claimed}`,
      expected: `postgres.version: ${found || '?'} for ${ctx.host.name}, or the right PGDATA`,
    });
  }
  return found;
}

async function filePlan(
  ctx: ActionContext,
  kind: FilePlan['kind'],
  path: string,
  shown: string,
  content: string,
  mode: number,
  read: (p: string) => Promise<string | null>,
): Promise<FilePlan> {
  const owner = ctx.host.postgres.osUser;
  const current = await read(path);
  const attributes: string[] = [];
  if (current !== null) {
    const st = await ctx.transport.stat(path, { become: owner });
    if (st.mode !== mode) attributes.push(`mode: ${formatMode(st.mode)} -> ${formatMode(mode)}`);
    if (st.owner !== owner) attributes.push(`owner: ${st.owner} -> ${owner}`);
  }
  return { kind, path, shown, content, mode, current, contentChanged: current !== content, attributes };
}

/** name = value lines of a postgresql.conf-style file, in order (a later line wins in the map form). */
export function parseConfSettings(text: string): RecoverySetting[] {
  const out: RecoverySetting[] = [];
  for (const raw of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*('(?:[^'\\]|''|\\.)*'|[^\s#']+)/.exec(raw);
    if (!m || raw.trimStart().startsWith('#')) continue;
    if (m[1] === 'include' || m[1] === 'include_dir' || m[1] === 'include_if_exists') continue;
    out.push({ name: m[1]!.toLowerCase(), value: unquote(m[2]!) });
  }
  return out;
}

function parseConfSettingsMap(text: string): Map<string, string> {
  return new Map(parseConfSettings(text).map((s) => [s.name, String(s.value)]));
}

function unquote(v: string): string {
  if (!v.startsWith("'")) return v;
  return v.slice(1, -1).replace(/''/g, "'").replace(/\\(.)/g, '$1');
}

function outcome(ctx: ActionContext, p: Plan, applied: boolean): Outcome {
  const created = p.files.filter((f) => f.current === null);
  const updated = p.files.filter((f) => f.current !== null && (f.contentChanged || f.attributes.length > 0));
  const changed = created.length + updated.length + p.remove.length > 0;
  const shown = (path: string) => (path.startsWith(p.pgdata + '/') ? path.slice(p.pgdata.length + 1) : path);
  const applyBy = changed ? p.applyBy : 'none';
  const data: Record<string, unknown> = {
    version: p.version,
    layout: p.layout,
    files: p.files.filter((f) => f.kind !== 'config').map((f) => f.path),
    settings: Object.fromEntries(p.settings.map((s) => [s.name, s.value])),
    apply_by: applyBy,
    needs_reload: applyBy === 'reload',
    needs_restart: applyBy === 'restart',
  };
  if (p.primaryConninfo) data.primary_conninfo = p.primaryConninfo;
  if (p.overridden.length) data.overridden_by_auto_conf = p.overridden;
  const note = p.overridden.length
    ? `; note: postgresql.auto.conf also sets ${p.overridden.join(', ')} and overrides this file`
    : '';
  if (!changed) return { changed: false, msg: `recovery settings for PostgreSQL ${p.version} are up to date${note}`, data };

  const verb = (v: string) => (applied ? v : `would ${v.replace(/d$/, '')}`);
  const parts = [
    ...created.map((f) => `${verb('created')} ${f.shown}`),
    ...updated.map((f) => `${verb('updated')} ${f.shown}`),
    ...p.remove.map((r) => `${verb('removed')} ${shown(r)}`),
  ];
  const needs = applyBy === 'none' ? '' : `; a running server needs a ${applyBy}`;
  const result: Outcome = { changed: true, msg: `${parts.join(', ')}${needs}${note}`, data };
  if (ctx.diff) {
    const chunks: string[] = [];
    for (const f of p.files) {
      if (f.current === null) chunks.push(`new file: ${f.shown} (mode ${formatMode(f.mode)})\n`);
      for (const a of f.attributes) chunks.push(`${f.shown}: ${a}\n`);
      if (f.contentChanged && f.content !== '') {
        chunks.push(unifiedDiff(f.current ?? '', f.content, { fromLabel: `${f.shown} (current)`, toLabel: `${f.shown} (new)` }));
      }
    }
    for (const r of p.remove) chunks.push(`remove: ${shown(r)}\n`);
    result.diff = chunks.join('');
  }
  return result;
}
