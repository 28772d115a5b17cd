import { posix } from 'node:path';
import { TEMPLATE_SCHEMA } from '../schema/templated.js';
import { failedCommand, PgplayError } from '../core/errors.js';
import { MASK } from '../core/redact.js';
import type { Inventory, SecretRef } from '../model/inventory.js';
import { mergePgpass, parsePgpassLine, pgpassEscape, PGPASS_MODE, type PgpassEntry } from '../postgres/pgpass.js';
import { unifiedDiff } from './diff.js';
import { secretShell, word } from './shell-export.js';
import { formatMode } from './template.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface PgpassEntryInput {
  host: string;
  port?: number | '*';
  database?: string;
  user?: string;
  password?: SecretRef;
}

export interface PgpassInput {
  path?: string;
  owner?: string;
  entries: PgpassEntryInput[];
}

const secretRefSchema = {
  description: 'The password, by reference only ({env} or {file}, or a template naming one of the inventory\'s, such as {{inventory.backup.barman.password}}). Default: the inventory\'s replication.password when user is the replication user.',
  // A template standing for a whole reference of the inventory ("{{inventory.backup.barman.password}}") renders to it.
  anyOf: [
    { type: 'object', additionalProperties: false, required: ['env'], properties: { env: { type: 'string', minLength: 1 } } },
    { type: 'object', additionalProperties: false, required: ['file'], properties: { file: { type: 'string', minLength: 1 } } },
    TEMPLATE_SCHEMA,
  ],
};

export const pgpassAction: Action<PgpassInput> = {
  name: 'pgpass',
  // A .pgpass file.
  changes: [],
  summary:
    'Keeps entries in the .pgpass file of the cluster\'s OS user (mode 0600, owned by it), so that replication connections find ' +
    'their password without it ever appearing in a conninfo. Other lines of the file are kept; passwords never show in diffs or messages.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['entries'],
    properties: {
      path: {
        type: 'string',
        pattern: '^/',
        description:
          'The file. Default: the host var pgpass_file when set, else .pgpass in the home directory of postgres.osUser (where libpq looks); the same file the recovery action names in primary_conninfo (passfile).',
      },
      owner: {
        type: 'string',
        minLength: 1,
        description: 'The OS user who owns and reads the file (default postgres.osUser); with another user the default path is .pgpass in that user\'s home (e.g. barman, whose conninfo needs it).',
      },
      entries: {
        type: 'array',
        minItems: 1,
        description: 'Lines to keep in the file; an existing line for the same host:port:database:user is replaced in place.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['host'],
          properties: {
            host: {
              type: 'string',
              minLength: 1,
              description: 'An inventory host name (its address and port are used), or the host exactly as connections name it, or *.',
            },
            port: {
              anyOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { const: '*' }],
              description: 'Default: the inventory host\'s port, else *.',
            },
            database: { type: 'string', minLength: 1, default: '*', description: 'replication matches physical replication connections; * matches any.' },
            user: { type: 'string', minLength: 1, description: 'Default: the inventory\'s replication.user.' },
            password: secretRefSchema,
          },
        },
      },
    },
  },

  // An entry without user or password would fail here after the steps before it (a standby's restore) ran.
  validateInput(input, where) {
    input.entries.forEach((e, i) => entryCredentials(where, e, `pgpass.entries[${i}]`));
  },

  async check(ctx, input) {
    return outcome(ctx, await plan(ctx, input), false);
  },

  // Each entry's line replaced (or added) in place; the password from the environment variable (or
  // file) the reference names, escaped for .pgpass by sed, never as a value in the script.
  async exportShell(ctx, input) {
    const path = input.path ?? (await pgpassPathFor(ctx, input));
    const owner = ownerOf(ctx, input);
    const commands = [`f=${word(path)}`, `tmp=$(mktemp "$f.pgplay-XXXXXX")`, 'if [ -f "$f" ]; then cat "$f" > "$tmp"; fi'];
    const env: string[] = [];
    for (const [i, e] of input.entries.entries()) {
      const entry = await resolveEntry(ctx, e, i);
      const secret = secretShell(passwordRef(ctx, e) as { env: string } | { file: string });
      env.push(...secret.env);
      const key = [entry.host, String(entry.port), entry.database, entry.user].map(pgpassEscape).join(':') + ':';
      commands.push(
        `k=${word(key)} awk 'index($0, ENVIRON["k"]) != 1' "$tmp" > "$tmp.new" && mv -f "$tmp.new" "$tmp"`,
        `printf '%s%s\\n' ${word(key)} "$(printf '%s' "${secret.expr}" | sed 's/[\\\\:]/\\\\&/g')" >> "$tmp"`,
      );
    }
    commands.push(`chmod 0600 "$tmp"`, `chown ${word(owner)} "$tmp"`, 'mv -f "$tmp" "$f"');
    return { runAlways: true, comments: [`${path}: ${input.entries.length} entr${input.entries.length === 1 ? 'y' : 'ies'}, mode 0600, owner ${owner}`], commands, env };
  },

  async apply(ctx, input) {
    const p = await plan(ctx, input);
    const owner = ownerOf(ctx, input);
    if (p.contentChanged) {
      // No previous copy: it would keep old passwords on disk.
      await ctx.transport.writeFile(p.path, p.content, { mode: PGPASS_MODE, owner, become: owner });
    } else if (p.attributes.length > 0) {
      for (const argv of [['chown', owner, '--', p.path], ['chmod', formatMode(PGPASS_MODE), '--', p.path]]) {
        const r = await ctx.transport.exec(argv, { signal: ctx.signal, timeoutMs: ctx.timeoutMs, env: { LC_ALL: 'C' } });
        if (r.exitCode !== 0) throw new PgplayError({ code: 'STEP_FAILED', message: `${argv[0]} ${p.path} failed (rc ${r.exitCode}): ${r.stderr.trim()}`, command: failedCommand(r) });
      }
    }
    return outcome(ctx, p, true);
  },
};

export default pgpassAction;

interface Plan {
  path: string;
  content: string;
  current: string | null;
  entries: PgpassEntry[];
  contentChanged: boolean;
  attributes: string[];
}

async function plan(ctx: ActionContext, input: PgpassInput): Promise<Plan> {
  const path = input.path ?? (await pgpassPathFor(ctx, input));
  const entries: PgpassEntry[] = [];
  for (const [i, e] of input.entries.entries()) entries.push(await resolveEntry(ctx, e, i));
  const owner = ownerOf(ctx, input);
  const raw = await ctx.transport.readFile(path, { become: owner });
  const current = raw === null ? null : raw.toString('utf8');
  const content = mergePgpass(current ?? '', entries);
  const attributes: string[] = [];
  if (current === null) {
    attributes.push('new file', `mode: ${formatMode(PGPASS_MODE)}`, `owner: ${owner}`);
  } else {
    const st = await ctx.transport.stat(path, { become: owner });
    if (st.type !== 'file') throw new PgplayError({ code: 'STEP_FAILED', message: `${path} is not a regular file` });
    if (st.mode !== PGPASS_MODE) attributes.push(`mode: ${formatMode(st.mode)} -> ${formatMode(PGPASS_MODE)}`);
    if (st.owner !== owner) attributes.push(`owner: ${st.owner} -> ${owner}`);
  }
  return { path, content, current, entries, contentChanged: current !== content, attributes };
}

/** The entry's password reference: its own, else the inventory's replication password for the replication user. */
function passwordRef(ctx: { inventory: Inventory }, e: PgpassEntryInput): unknown {
  const replication = ctx.inventory.replication;
  const user = e.user ?? replication?.user;
  return e.password ?? (replication?.password && user === replication.user ? replication.password : undefined);
}

/** The entry's user and password reference, or the error of an entry that has none (checked before the run changes anything). */
function entryCredentials(ctx: { inventory: Inventory }, e: PgpassEntryInput, where: string): { user: string; ref: unknown } {
  const replication = ctx.inventory.replication;
  const user = e.user ?? replication?.user;
  if (!user) {
    throw new PgplayError({ code: 'SEMANTIC', message: `${where} has no user and the inventory has no replication.user`, expected: 'user: <role name>' });
  }
  const ref = passwordRef(ctx, e);
  if (ref === undefined) {
    throw new PgplayError({
      code: 'SEMANTIC',
      message: `${where} (${user}) has no password`,
      expected: user === replication?.user ? 'replication.password in the inventory, or password: {env|file}' : 'password: {env: NAME} or {file: PATH}',
    });
  }
  return { user, ref };
}

async function resolveEntry(ctx: ActionContext, e: PgpassEntryInput, index: number): Promise<PgpassEntry> {
  const where = `pgpass.entries[${index}]`;
  const invHost = ctx.hosts[e.host];
  const { user, ref } = entryCredentials(ctx, e, where);
  // ctx.secret registers the value with the redactor before anything can print it.
  const password = await ctx.secret(ref);
  if (password === undefined || password === '') {
    throw new PgplayError({ code: 'SEMANTIC', message: `${where} (${user}): the password reference resolves to nothing` });
  }
  return {
    host: invHost ? invHost.address : e.host,
    port: e.port ?? (invHost ? invHost.postgres.port : '*'),
    database: e.database ?? '*',
    user,
    password,
  };
}

/**
 * ~<osUser>/.pgpass: where libpq looks by default, so psql, pg_basebackup and the walreceiver of a
 * server started by that user all find it, and primary_conninfo names it explicitly (passfile).
 */
function ownerOf(ctx: ActionContext, input: PgpassInput): string {
  return input.owner ?? ctx.host.postgres.osUser;
}

/** Another owner's file is the one in that user's home; the PostgreSQL OS user's is defaultPgpassPath. */
async function pgpassPathFor(ctx: ActionContext, input: PgpassInput): Promise<string> {
  if (input.owner === undefined || input.owner === ctx.host.postgres.osUser) return defaultPgpassPath(ctx);
  return posix.join(await homeOf(ctx, input.owner), '.pgpass');
}

export async function defaultPgpassPath(ctx: ActionContext): Promise<string> {
  // A host may keep its own file (host var pgpass_file), as the lab does so that it never touches
  // the OS user's real ~/.pgpass; like pgbackrest_config for the pgbackrest action.
  const own = ctx.host.vars.pgpass_file;
  if (typeof own === 'string' && own.startsWith('/')) return own;
  return posix.join(await homeOf(ctx, ctx.host.postgres.osUser), '.pgpass');
}

export async function homeOf(ctx: ActionContext, user: string): Promise<string> {
  const r = await ctx.transport.exec(['getent', 'passwd', user], { signal: ctx.signal, timeoutMs: 30_000, env: { LC_ALL: 'C' } });
  const home = r.exitCode === 0 ? r.stdout.trim().split('\n')[0]?.split(':')[5] : undefined;
  if (!home || !home.startsWith('/')) {
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `cannot find the home directory of ${user} on ${ctx.host.name} (getent passwd ${user}: rc ${r.exitCode})`,
      hint: 'give the .pgpass path explicitly (path: ...)',
    });
  }
  return home;
}

/** The file as a reader may see it: every password field replaced by the mask. */
function masked(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const f = parsePgpassLine(line);
      return f ? [...f.slice(0, 4).map(pgpassEscape), MASK].join(':') : line;
    })
    .join('\n');
}

function outcome(ctx: ActionContext, p: Plan, applied: boolean): Outcome {
  const changed = p.contentChanged || p.attributes.length > 0;
  const data = { path: p.path, entries: p.entries.map((e) => `${e.user}@${e.host}:${e.port}/${e.database}`) };
  if (!changed) return { changed: false, msg: `${p.path} is up to date`, data };
  const what = p.current === null ? 'create' : 'update';
  const msg = `${applied ? `${what}d` : `would ${what}`} ${p.path}`;
  const result: Outcome = { changed, msg, data };
  if (ctx.diff) {
    const before = masked(p.current ?? '');
    const after = masked(p.content);
    const notes = [...p.attributes.filter((a) => a !== 'new file')];
    if (p.contentChanged && before === after) notes.push('password changed (not shown)');
    const text = before === after ? '' : unifiedDiff(before, after, { fromLabel: `${p.path} (current)`, toLabel: `${p.path} (new)` });
    // The engine redacts too; this keeps the diff clean even where it is used before redaction.
    result.diff = ctx.redactor.redact(notes.map((n) => n + '\n').join('') + text);
  }
  return result;
}
