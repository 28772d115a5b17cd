/**
 * preflight: the tools a playbook will need on a host are there, in versions that fit the server,
 * checked before the playbook's first change. Without it a backup could turn archiving on (and restart
 * the primary) and only then find that pgBackRest is missing: every archive attempt fails and WAL piles
 * up in pg_wal. Read-only: check and apply do the same; a missing or unfit tool refuses (exit 3).
 */
import { PgplayError } from '../core/errors.js';
import type { HostFacts } from '../model/facts.js';
import { pgbackrestSupports } from '../postgres/versions.js';
import { PGBACKREST_BIN } from './pgbackrest/runner.js';
import { pgBin } from '../postgres/owner.js';
import { SERVER_PATH } from '../postgres/server-env.js';
import type { Action, ActionContext, Outcome } from './types.js';

export const CLIENT_TOOLS = ['pg_dumpall', 'pg_dump', 'pg_restore', 'pg_basebackup', 'pg_verifybackup', 'pg_archivecleanup', 'psql', 'pg_rewind'] as const;
export type Tool = 'pgbackrest' | (typeof CLIENT_TOOLS)[number];

export interface PreflightInput {
  tools: Tool[];
  /** Tools the playbook can do without: tool -> what it does instead. An unfit one is reported, not refused. */
  optional?: Partial<Record<Tool, string>>;
}

/** Tools that read no server data (WAL file names only): any major serves every server. */
const VERSIONLESS: ReadonlySet<string> = new Set(['pg_archivecleanup']);

export const preflightAction: Action<PreflightInput> = {
  name: 'preflight',
  // Reads only.
  changes: [],
  // Check and apply are the same reads: as a guard it runs before the run's pre-flight, and it may run under plan.
  readOnly: () => true,
  summary:
    'Read-only: the tools the playbook will need on this host are installed, in versions that fit the cluster\'s server. ' +
    'pgbackrest is looked up as pgplay runs it and, on a host with a data directory, on the PATH its server gives ' +
    'archive_command; its release must support the server\'s major. PostgreSQL client tools come from postgres.bindir and ' +
    'must be at least the server\'s major (pg_rewind: the same major; pg_archivecleanup, which reads only WAL file names, any). Put it before the first step that changes anything.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['tools'],
    properties: {
      optional: {
        type: 'object',
        propertyNames: { enum: ['pgbackrest', ...CLIENT_TOOLS] },
        additionalProperties: { type: 'string', minLength: 1 },
        description:
          'Tools the playbook has another way for, each with what it does instead (e.g. pg_basebackup: "the base backup is taken with the copy method"). ' +
          'A missing or unfit one is not refused: it is named in the step\'s message with that consequence, and registered in unfit (a list of names) for later steps\' when, and why in why_unfit.<tool>.',
      },
      tools: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { enum: ['pgbackrest', ...CLIENT_TOOLS] },
        description: 'The tools to check on this host.',
      },
    },
  },

  async check(ctx, input) {
    return preflight(ctx, input);
  },

  async apply(ctx, input) {
    return preflight(ctx, input);
  },

  // Read-only: the checks as comments, for the human to make before the part runs (the plan made them).
  async exportShell(ctx, input) {
    const major = await serverMajor(ctx);
    return {
      comments: [...input.tools, ...Object.keys(input.optional ?? {}) as Tool[]].map((tool) =>
        tool === 'pgbackrest'
          ? `check: pgbackrest version supports PostgreSQL ${major} (as ${ctx.host.postgres.osUser}${ctx.host.pgdata ? `, and on the server's PATH ${SERVER_PATH}` : ''})`
          : `check: ${pgBin(ctx.host, tool)} --version is PostgreSQL ${major}${tool === 'pg_rewind' ? ' (the same major)' : ' or newer'}`,
      ),
    };
  },
};

export default preflightAction;

/** The major of the cluster's server: the primary's facts, else the inventory's claim. */
async function serverMajor(ctx: ActionContext): Promise<number> {
  const primary = Object.values(ctx.hosts).find((h) => h.role === 'primary');
  const facts: HostFacts | undefined = primary ? await ctx.factsOf(primary.name) : undefined;
  return facts?.version ?? primary?.postgres.version ?? ctx.host.postgres.version;
}

async function preflight(ctx: ActionContext, input: PreflightInput): Promise<Outcome> {
  const major = await serverMajor(ctx);
  const optional = (Object.entries(input.optional ?? {}) as [Tool, string][]).filter(([tool]) => !input.tools.includes(tool));
  // Every tool is asked at the same time (each is one or two `--version` runs that read nothing shared);
  // the findings are then taken in the order the playbook names the tools.
  const ask = async (tool: Tool): Promise<{ problems: string[]; found: Record<string, string> }> => {
    const problems: string[] = [];
    const found: Record<string, string> = {};
    await (tool === 'pgbackrest' ? checkPgbackrest(ctx, major, problems, found) : checkClientTool(ctx, tool, major, problems, found));
    return { problems, found };
  };
  const [required, optionals] = await Promise.all([Promise.all(input.tools.map(ask)), Promise.all(optional.map(([tool]) => ask(tool)))]);
  const problems = required.flatMap((r) => r.problems);
  const found: Record<string, string> = Object.assign({}, ...required.map((r) => r.found), ...optionals.map((r) => r.found));
  const unfit: string[] = [];
  const why_unfit: Record<string, string> = {};
  const instead: string[] = [];
  optional.forEach(([tool, consequence], i) => {
    const why = optionals[i]!.problems;
    if (why.length) {
      unfit.push(tool);
      why_unfit[tool] = why.join('; ');
      instead.push(`${why.join('; ')}: ${consequence}`);
    }
  });
  if (problems.length) {
    throw new PgplayError({
      code: 'GUARD',
      message: `${problems.join('; ')}: nothing was changed`,
      hint: 'install the missing tools (Debian: apt-get install pgbackrest postgresql-client-<major>) or correct postgres.bindir, then run again',
    });
  }
  for (const line of instead) ctx.log(line);
  const fit = Object.entries(found)
    .map(([tool, version]) => `${tool} ${version}`)
    .join(', ');
  return {
    changed: false,
    msg: [fit, ...instead].filter(Boolean).join('; '),
    data: { tools: found, unfit, why_unfit },
  };
}

/** `<tool> version` output's release, e.g. "pgBackRest 2.45" -> 2.45, or undefined when it did not run. */
async function pgbackrestVersion(ctx: ActionContext, argv: string[]): Promise<string | undefined> {
  const r = await ctx.transport.exec(argv, { become: ctx.host.postgres.osUser, cwd: '/', signal: ctx.signal, timeoutMs: 30_000 });
  return r.exitCode === 0 ? /pgBackRest\s+(\d+(?:\.\d+)+)/.exec(r.stdout)?.[1] : undefined;
}

async function checkPgbackrest(ctx: ActionContext, major: number, problems: string[], found: Record<string, string>): Promise<void> {
  const host = ctx.host.name;
  // The server runs archive-push / archive-get itself, with the environment pgplay starts it with: on a
  // host with a data directory pgBackRest must be found on that PATH too (both asked at the same time).
  const [asRun, forServer] = await Promise.all([
    pgbackrestVersion(ctx, [PGBACKREST_BIN, 'version']),
    ctx.host.pgdata ? pgbackrestVersion(ctx, ['env', '-i', `PATH=${SERVER_PATH}`, PGBACKREST_BIN, 'version']) : undefined,
  ]);
  if (asRun === undefined) {
    problems.push(`pgbackrest is not installed on ${host} (not found on the PATH pgplay runs it with, as ${ctx.host.postgres.osUser})`);
    return;
  }
  if (ctx.host.pgdata) {
    if (forServer === undefined) {
      problems.push(`pgbackrest is not installed on ${host} where its PostgreSQL server finds commands (PATH ${SERVER_PATH}): archive_command would fail on every WAL segment`);
      return;
    }
  }
  const fit = pgbackrestSupports(asRun, major);
  if (!fit.ok) problems.push(`pgbackrest on ${host} does not support the server: ${fit.reason}`);
  // The server's archive_command and restore_command run the pgBackRest on its PATH: another release
  // there must fit the server too, or archiving fails while pgplay's own checks pass.
  if (forServer !== undefined && forServer !== asRun) {
    const serverFit = pgbackrestSupports(forServer, major);
    if (!serverFit.ok) {
      problems.push(`pgbackrest where the PostgreSQL server on ${host} finds commands (PATH ${SERVER_PATH}) does not support it: ${serverFit.reason} (pgplay runs ${asRun})`);
    }
  }
  found.pgbackrest = asRun;
}

async function checkClientTool(ctx: ActionContext, tool: string, major: number, problems: string[], found: Record<string, string>): Promise<void> {
  const host = ctx.host.name;
  const path = pgBin(ctx.host, tool);
  const r = await ctx.transport.exec([path, '--version'], { become: ctx.host.postgres.osUser, cwd: '/', signal: ctx.signal, timeoutMs: 30_000 });
  const m = r.exitCode === 0 ? /\(PostgreSQL\)\s+(\d+)(\.\d+)?/.exec(r.stdout) : null;
  if (!m) {
    problems.push(`${tool} is not installed on ${host} (no ${path}: postgres.bindir ${ctx.host.postgres.bindir})`);
    return;
  }
  const toolMajor = Number(m[1]);
  const toolVersion = `${m[1]}${m[2] ?? ''}`;
  if (tool === 'pg_rewind' ? toolMajor !== major : toolMajor < major && !VERSIONLESS.has(tool)) {
    problems.push(
      `${tool} on ${host} is from PostgreSQL ${toolVersion}, the server runs ${major}: ${tool === 'pg_rewind' ? 'pg_rewind needs the same major' : `${tool} works only with servers up to its own major`}`,
    );
    return;
  }
  found[tool] = toolVersion;
}
