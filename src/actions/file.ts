import { posix } from 'node:path';
import { failedCommand, PgplayError, type FailedCommand } from '../core/errors.js';
import type { FileStat } from '../transports/types.js';
import { disarm, guardDestruction, guardFileRemoval, refuseWriteIntoOtherPgdata } from './identity-guard.js';
import { commandLine } from './shell-export.js';
import { formatMode, MODE_PATTERN, parseMode, statFollowing } from './template.js';
import type { Action, ActionContext, Outcome } from './types.js';

export type FileState = 'directory' | 'file' | 'absent' | 'link' | 'touch';

export interface FileInput {
  path: string;
  state?: FileState;
  mode?: string;
  owner?: string;
  group?: string;
  src?: string;
  force?: boolean;
}

export const fileAction: Action<FileInput> = {
  name: 'file',
  // Removing a path may remove a data directory (a rebuild empties PGDATA); nothing else a fact describes.
  changes: (input) => (input.state === 'absent' ? ['pgdata'] : []),
  summary:
    'Ensures a path is a directory, an existing file, a symbolic link, touched, or absent, with mode and owner. ' +
    'Every change runs as the become user, with the same commands locally and over SSH.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: {
      path: { type: 'string', pattern: '^/', description: 'Absolute path on the host.' },
      state: {
        type: 'string',
        enum: ['directory', 'file', 'absent', 'link', 'touch'],
        default: 'file',
        description:
          'directory: created with parents when missing. file: must already exist; only mode and owner are fixed. ' +
          'link: a symbolic link to src. touch: created when missing, timestamps updated (always a change). ' +
          'absent: removed; a non-empty directory only with force: true.',
      },
      mode: { type: 'string', pattern: MODE_PATTERN, description: 'Permission bits in octal, quoted: "0700". Not for links.' },
      owner: { type: 'string', minLength: 1, description: 'Owning OS user.' },
      group: { type: 'string', minLength: 1, description: 'Owning OS group.' },
      src: { type: 'string', minLength: 1, description: 'Target of the link (state: link), stored as written.' },
      force: {
        type: 'boolean',
        default: false,
        description: 'absent: remove a non-empty directory with all it contains. link: replace an existing regular file by the link.',
      },
    },
    if: { properties: { state: { const: 'link' } }, required: ['state'] },
    then: { required: ['src'] },
  },

  destructive(input) {
    return input.state === 'absent' && input.force === true;
  },

  readAhead(input) {
    return [normalize(input.path)];
  },

  async check(ctx, input) {
    const p = await plan(ctx, input);
    // A removal examined here (identity, cluster, a running server, contents) is what apply removes, in this
    // attempt with no human asked in between (the engine empties checkReads then): see REMOVAL_EXAMINED.
    if (!ctx.checkMode && (input.state ?? 'file') === 'absent') ctx.checkReads?.set(REMOVAL_EXAMINED, p);
    return outcome(ctx, input, p, false);
  },

  async exportShell(ctx, input) {
    const p = await plan(ctx, input);
    if (p.disarm) throw failed(`removing the data directory ${p.disarm} is not exported: its guard reads the server's state when it runs`);
    const comments = p.changes.length ? p.changes : [p.note ?? 'as it should be'];
    if ((input.state ?? 'file') !== 'directory') return { comments, commands: p.commands.map((argv) => commandLine(argv, ctx.become)) };
    // A directory is ensured whatever the plan found (a restore may have replaced it since).
    const ensure = [
      ['mkdir', '-p', '--', p.path],
      ...(input.mode !== undefined ? [['chmod', input.mode, '--', p.path]] : []),
      ...(input.owner !== undefined || input.group !== undefined ? [['chown', `${input.owner ?? ''}${input.group !== undefined ? `:${input.group}` : ''}`, '--', p.path]] : []),
    ];
    return { runAlways: true, comments, commands: ensure.map((argv) => commandLine(argv, argv[0] === 'chown' ? undefined : ctx.become)) };
  },

  async apply(ctx, input) {
    const examined = (input.state ?? 'file') === 'absent' ? (ctx.checkReads?.get(REMOVAL_EXAMINED) as Plan | undefined) : undefined;
    const p = examined ?? (await plan(ctx, input));
    if (p.disarm) await disarm(ctx, p.disarm);
    for (const argv of p.commands) await run(ctx, argv, p.creates);
    return outcome(ctx, input, p, true);
  },
};

export default fileAction;

/**
 * checkReads key: the plan of a removal as check examined and guarded it moments ago (the directory's
 * identity on this host and every other's, its cluster, whether a server runs there, whether it is
 * empty). Apply of the same attempt acts on it, as a stop (STOP_GUARDED) and a restore do; without it (a
 * human was asked, or apply alone) apply examines the path again. The pg_control of a PGDATA is still
 * removed first (disarm), so a removal cut short cannot be started.
 */
const REMOVAL_EXAMINED = 'file.absent.examined';

interface Plan {
  path: string;
  /** What changes, as the user reads it: "state: absent -> directory", "mode: 0755 -> 0700". */
  changes: string[];
  commands: string[][];
  /** A change on every run (touch), even though nothing else differs. */
  always?: boolean;
  /** Under --check: why nothing can be judged yet. */
  note?: string;
  /** A PGDATA removed with the directory: its pg_control goes first, so a half-done removal cannot start. */
  disarm?: string;
  /** The commands only create this directory (it was missing) and its parents: a change of known extent. */
  creates?: string;
}

async function plan(ctx: ActionContext, input: FileInput): Promise<Plan> {
  const path = normalize(input.path);
  const state = input.state ?? 'file';
  const become = { become: ctx.become };
  if (input.mode !== undefined && (state === 'link' || state === 'absent')) {
    throw usage(`mode does not apply to state ${state}`, 'mode only with directory, file or touch');
  }
  if (input.src !== undefined && state !== 'link') throw usage(`src applies only to state link, not ${state}`, 'src only with state: link');
  if (state === 'link' && input.src === undefined) throw usage('state link needs src', 'src: the link target');
  const wantMode = input.mode !== undefined ? parseMode(input.mode) : undefined;
  if (state !== 'absent') refuseWriteIntoOtherPgdata(ctx, path);

  switch (state) {
    case 'absent': {
      refuseShortPath(path);
      const st = await ctx.transport.stat(path, become);
      // Nothing there, nothing removed: no server to probe.
      if (!st.exists) return { path, changes: [], commands: [] };
      // A directory is examined in full (whose PGDATA, which cluster, running); a link to a running PGDATA is refused too.
      if (st.type !== 'directory') await guardFileRemoval(ctx, path, ctx.become ?? null);
      const pgdata = st.type === 'directory' ? await guardDirectoryRemoval(ctx, path) : await refuseRunningPgdata(ctx, path);
      if (st.type === 'directory') {
        const empty = await isEmptyDirectory(ctx, path);
        if (!empty && !input.force) {
          throw new PgplayError({
            code: 'GUARD',
            message: `refusing to remove ${path}: the directory is not empty`,
            hint: 'set force: true to remove it with everything in it',
          });
        }
        return { path, changes: [`state: directory -> absent${empty ? '' : ' (with its contents)'}`], commands: [['rm', '-rf', '--', path]], disarm: pgdata };
      }
      return { path, changes: [`state: ${st.type} -> absent`], commands: [['rm', '-f', '--', path]] };
    }

    case 'directory': {
      const { path: real, stat: st } = await statFollowing(ctx, path);
      if (!st.exists) {
        return { path, changes: ['state: absent -> directory', ...wanted(input, wantMode)], commands: newDirectoryCommands(path, input, wantMode), creates: path };
      }
      if (st.type !== 'directory') throw failed(`${path} exists and is ${describeType(st)}, not a directory`);
      return directoryCommands(attributesPlan(real, st, input, wantMode));
    }

    case 'file': {
      const { path: real, stat: st } = await statFollowing(ctx, path);
      if (!st.exists) {
        // Under --check an earlier step that would create it has not run; say so instead of failing the plan.
        if (ctx.checkMode) return { path, changes: [], commands: [], note: `${path} does not exist yet; state file expects an earlier step to create it` };
        throw failed(`${path} does not exist`, 'use state: touch to create an empty file');
      }
      if (st.type !== 'file') throw failed(`${path} exists and is ${describeType(st)}, not a regular file`);
      return attributesPlan(real, st, input, wantMode);
    }

    case 'touch': {
      const st = (await statFollowing(ctx, path)).stat;
      if (st.exists && st.type === 'directory') throw failed(`${path} exists and is a directory`);
      const changes = st.exists ? ['timestamps updated', ...attributeChanges(st, input, wantMode)] : ['state: absent -> file', ...wanted(input, wantMode)];
      return { path, changes, commands: [['touch', '--', path], ...attributeCommands(path, input, wantMode)], always: true };
    }

    case 'link': {
      const src = input.src!;
      const st = await ctx.transport.stat(path, become);
      const linkCommands = [['ln', '-sfn', '--', src, path], ...linkOwnerCommands(path, input)];
      if (!st.exists) return { path, changes: [`state: absent -> link to ${src}`, ...wanted(input, undefined)], commands: linkCommands };
      if (st.type === 'directory') throw failed(`${path} exists and is a directory; refusing to replace it with a link`);
      // Replacing a file or a link removes it first: never one inside another host's PGDATA.
      if (st.type !== 'symlink' || st.linkTarget !== src) await guardFileRemoval(ctx, path, ctx.become ?? null);
      if (st.type !== 'symlink') {
        if (!input.force) throw failed(`${path} exists and is ${describeType(st)}`, 'set force: true to replace it with the link');
        return { path, changes: [`state: ${st.type} -> link to ${src}`], commands: linkCommands };
      }
      if (st.linkTarget !== src) return { path, changes: [`link: ${st.linkTarget} -> ${src}`, ...attributeChanges(st, input, undefined)], commands: linkCommands };
      const changes = attributeChanges(st, input, undefined);
      return { path, changes, commands: changes.length ? linkOwnerCommands(path, input) : [] };
    }
  }
}

function attributesPlan(path: string, st: FileStat, input: FileInput, wantMode: number | undefined): Plan {
  const changes = attributeChanges(st, input, wantMode);
  if (changes.length === 0) return { path, changes, commands: [] };
  const differs = {
    owner: input.owner !== undefined && st.owner !== input.owner,
    group: input.group !== undefined && st.group !== input.group,
    mode: wantMode !== undefined && st.mode !== wantMode,
  };
  return {
    path,
    changes,
    commands: attributeCommands(path, { ...input, owner: differs.owner || differs.group ? input.owner : undefined, group: differs.owner || differs.group ? input.group : undefined }, differs.mode ? wantMode : undefined),
  };
}

function attributeChanges(st: FileStat, input: FileInput, wantMode: number | undefined): string[] {
  const out: string[] = [];
  if (wantMode !== undefined && st.mode !== wantMode) out.push(`mode: ${formatMode(st.mode)} -> ${formatMode(wantMode)}`);
  if (input.owner !== undefined && st.owner !== input.owner) out.push(`owner: ${st.owner} -> ${input.owner}`);
  if (input.group !== undefined && st.group !== input.group) out.push(`group: ${st.group} -> ${input.group}`);
  return out;
}

function wanted(input: FileInput, wantMode: number | undefined): string[] {
  return [
    ...(wantMode !== undefined ? [`mode: ${formatMode(wantMode)}`] : []),
    ...(input.owner !== undefined ? [`owner: ${input.owner}`] : []),
    ...(input.group !== undefined ? [`group: ${input.group}`] : []),
  ];
}

/**
 * A new directory is one command, not three (mkdir, chown, chmod): parents as `mkdir -p` makes them
 * (under the become user's umask: install would make them 0755), then `install -d` makes the
 * directory itself with its owner, group and mode at once.
 */
function newDirectoryCommands(path: string, input: Pick<FileInput, 'owner' | 'group'>, wantMode: number | undefined): string[][] {
  if (wantMode === undefined) return [['mkdir', '-p', '--', path], ...attributeCommands(path, input, undefined)];
  return [['/bin/sh', '-c', 'mkdir -p -- "$1" && shift && exec install "$@"', 'pgplay-directory', posix.dirname(path), ...installOptions(path, input, wantMode)]];
}

/** An existing directory whose owner and mode both differ: one `install -d` instead of chown then chmod. */
function directoryCommands(plan: Plan): Plan {
  const [chown, chmod] = plan.commands;
  if (plan.commands.length !== 2 || chown?.[0] !== 'chown' || chmod?.[0] !== 'chmod') return plan;
  const [owner, group] = chown[1]!.split(':');
  return { ...plan, commands: [['install', ...installOptions(plan.path, { owner: owner || undefined, group }, parseInt(chmod[1]!, 8))]] };
}

/** install sets owner and group before the mode, as chown before chmod (chown clears set-id bits). */
function installOptions(path: string, input: Pick<FileInput, 'owner' | 'group'>, wantMode: number): string[] {
  return [
    '-d',
    '-m', formatMode(wantMode),
    ...(input.owner !== undefined ? ['-o', input.owner] : []),
    ...(input.group !== undefined ? ['-g', input.group] : []),
    '--', path,
  ];
}

/** chown before chmod, because chown clears set-id bits. */
function attributeCommands(path: string, input: Pick<FileInput, 'owner' | 'group'>, wantMode: number | undefined): string[][] {
  const out: string[][] = [];
  const spec = ownerSpec(input);
  if (spec) out.push(['chown', spec, '--', path]);
  if (wantMode !== undefined) out.push(['chmod', formatMode(wantMode), '--', path]);
  return out;
}

/** A link's own owner (chown -h); its mode means nothing on Linux. */
function linkOwnerCommands(path: string, input: FileInput): string[][] {
  const spec = ownerSpec(input);
  return spec ? [['chown', '-h', spec, '--', path]] : [];
}

function ownerSpec(input: Pick<FileInput, 'owner' | 'group'>): string | undefined {
  if (input.owner === undefined && input.group === undefined) return undefined;
  return `${input.owner ?? ''}${input.group !== undefined ? ':' + input.group : ''}`;
}

/** "/" and top-level directories (/var, /home) are never removed: a typo away from a disaster. */
function refuseShortPath(path: string): void {
  if (path.split('/').filter(Boolean).length < 2) {
    throw new PgplayError({
      code: 'GUARD',
      message: `refusing to remove ${path}: a path needs at least two components to be removed`,
      expected: 'a path such as /var/lib/pgplay/drill',
    });
  }
}

function runningPgdata(ctx: ActionContext, path: string, how: 'it is' | 'it contains'): PgplayError {
  return new PgplayError({
    code: 'GUARD',
    message: `refusing to remove ${path}: ${how} the PGDATA (${ctx.host.pgdata}) of the running cluster on ${ctx.host.name}`,
    hint: 'stop PostgreSQL first (postgres: { state: stopped })',
  });
}

/** A link (or file) that is the PGDATA of the running cluster, by its path or once links are resolved. */
async function refuseRunningPgdata(ctx: ActionContext, path: string): Promise<undefined> {
  const pgdata = ctx.host.pgdata;
  // Read live, not from the facts: an earlier step of the run may have started or stopped the server.
  if (!pgdata || !(await postmasterAlive(ctx, normalize(pgdata)))) return undefined;
  const [realPath, realPgdata] = await resolvePaths(ctx, [path, normalize(pgdata)]);
  for (const [p, d] of [
    [path, normalize(pgdata)],
    [realPath, realPgdata],
  ] as const) {
    if (d === p || d.startsWith(p + '/')) throw runningPgdata(ctx, path, d === p ? 'it is' : 'it contains');
  }
  return undefined;
}

/**
 * A directory goes only when it is no other inventory host's PGDATA nor holds one, holds no cluster but
 * the inventory's, and is not the primary's own PGDATA (identity-guard.ts; refused in plan too). When
 * it is or holds this host's PGDATA with a pg_control, returns that PGDATA, to be disarmed first.
 */
async function guardDirectoryRemoval(ctx: ActionContext, path: string): Promise<string | undefined> {
  const { target, ownPgdata } = await guardDestruction(ctx, { verb: 'remove', path, cluster: true, as: ctx.become ?? null });
  if (!ownPgdata) return undefined;
  const how = ownPgdata.real === target.real ? 'it is' : 'it contains';
  if (ownPgdata.running) throw runningPgdata(ctx, path, how);
  if (ctx.host.role === 'primary') {
    throw new PgplayError({
      code: 'GUARD',
      message: `refusing to remove ${path}: ${how} the PGDATA of ${ctx.host.name}, the inventory's primary`,
      hint: 'a playbook never removes the primary\'s data directory; if the inventory is out of date (a promotion), correct its roles first',
    });
  }
  return ownPgdata.control ? ownPgdata.real : undefined;
}

/** Whether PGDATA's postmaster.pid names a live process, read as the cluster's OS user. */
async function postmasterAlive(ctx: ActionContext, pgdata: string): Promise<boolean> {
  const script = 'pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null) && [ -n "$pid" ] && { kill -0 "$pid" 2>/dev/null || [ -d "/proc/$pid" ]; }';
  const r = await ctx.transport.exec(['/bin/sh', '-c', script, 'pgplay-postmaster-alive', pgdata], {
    become: ctx.host.postgres.osUser,
    signal: ctx.signal,
    env: { LC_ALL: 'C' },
  });
  return r.exitCode === 0;
}

/** Symlinks resolved on the host, so /data/pg → /var/lib/postgresql/15/main is caught too. */
async function resolvePaths(ctx: ActionContext, paths: string[]): Promise<string[]> {
  const r = await ctx.transport.exec(['readlink', '-m', '--', ...paths], { become: ctx.become, signal: ctx.signal });
  const lines = r.stdout.split('\n');
  return r.exitCode === 0 && lines.length === paths.length ? lines : paths;
}

async function isEmptyDirectory(ctx: ActionContext, path: string): Promise<boolean> {
  const r = await ctx.transport.exec(['find', path, '-mindepth', '1', '-maxdepth', '1', '-print', '-quit'], {
    become: ctx.become,
    signal: ctx.signal,
    env: PLAIN_LOCALE,
  });
  if (r.exitCode !== 0) throw failed(`cannot list ${path}: ${r.stderr.trim()}`, undefined, failedCommand(r));
  return r.stdout === '';
}

/** The C locale keeps tool messages in plain ASCII English, the same on every host. */
export const PLAIN_LOCALE = { LC_ALL: 'C' };

async function run(ctx: ActionContext, argv: string[], createsDirectory?: string): Promise<void> {
  const r = await ctx.transport.exec(argv, { become: ctx.become, signal: ctx.signal, timeoutMs: ctx.timeoutMs, env: PLAIN_LOCALE, createsDirectory });
  if (r.exitCode !== 0) {
    throw failed(`${argv.filter((a) => a !== '--').join(' ')} failed (rc ${r.exitCode}): ${r.stderr.trim()}`, undefined, failedCommand(r));
  }
}

function outcome(ctx: ActionContext, input: FileInput, p: Plan, applied: boolean): Outcome {
  const state = input.state ?? 'file';
  const data = { path: p.path, state };
  if (p.note) return { changed: true, msg: p.note, data };
  if (p.changes.length === 0 && !p.always) return { changed: false, msg: `${p.path} is ${describeWanted(input)}`, data };
  const result: Outcome = { changed: true, msg: `${applied ? 'changed' : 'would change'} ${p.path}: ${p.changes.join('; ')}`, data };
  if (ctx.diff) result.diff = p.changes.map((c) => `${p.path}: ${c}\n`).join('');
  return result;
}

function describeWanted(input: FileInput): string {
  switch (input.state ?? 'file') {
    case 'absent':
      return 'absent';
    case 'link':
      return `a link to ${input.src}`;
    case 'directory':
      return 'a directory as wanted';
    default:
      return 'a file as wanted';
  }
}

function describeType(st: FileStat): string {
  return st.type === 'symlink' ? 'a symbolic link' : st.type === 'directory' ? 'a directory' : st.type === 'file' ? 'a regular file' : 'a special file';
}

function normalize(path: string): string {
  const n = posix.normalize(path);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function failed(message: string, hint?: string, command?: FailedCommand): PgplayError {
  return new PgplayError({ code: 'STEP_FAILED', message, hint, command });
}

function usage(message: string, expected: string): PgplayError {
  return new PgplayError({ code: 'SCHEMA', message, expected });
}
