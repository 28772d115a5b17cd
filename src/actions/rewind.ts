/**
 * The rewind action: pg_rewind an old primary's stopped data directory onto the new primary's
 * timeline, when its prerequisites hold (src/postgres/rewind.ts); otherwise say why and leave the
 * directory to a delta restore (rejoin.yml). It never leaves behind a directory that a failed rewind
 * half rewrote and that could still be started: when pg_rewind fails, global/pg_control is removed
 * first thing, as pgBackRest's restore does before it copies, so that only a restore can bring the
 * directory back.
 *
 * check (read-only, also under plan) reads, on the host to rewind and as its PGDATA owner: whether
 * pg_rewind is installed, whether a server runs there (refused: nothing rewinds a running server),
 * pg_control (wal_log_hints or data checksums, a clean shutdown, the cluster's system identifier) and
 * the source's answer to one query made through the very connection string pg_rewind will use (the
 * source's address and port, the role, the OS user's .pgpass): reachable, allowed to rewind (superuser
 * or EXECUTE on the functions pg_rewind calls), and read-write. Registers `possible`, `reasons`,
 * `rewound` and `restore_needed` for the steps after it.
 */
import { PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import { buildConninfo } from '../postgres/conninfo.js';
import { requirePgdata, runAsOwner } from '../postgres/owner.js';
import { controlBlockers, parseRewindProbe, pgRewindArgv, rewindProbeArgv, sourceBlockers, type RewindProbe } from '../postgres/rewind.js';
import { disarm, guardDestruction } from './identity-guard.js';
import { defaultPgpassPath } from './pgpass.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface RewindInput {
  source: string;
  user?: string;
  database?: string;
  allow_primary?: boolean;
}

function sourceHost(ctx: ActionContext, input: RewindInput): Host {
  const source = ctx.hosts[input.source];
  if (!source || source.name === ctx.host.name) {
    throw new PgplayError({
      code: 'SEMANTIC',
      message: `rewind source "${input.source}" ${source ? `is ${ctx.host.name} itself` : 'is no host of the inventory'}`,
      expected: 'the inventory host of the new primary',
    });
  }
  return source;
}

async function conninfoFor(ctx: ActionContext, source: Host, input: RewindInput): Promise<string> {
  return buildConninfo({
    host: source.address,
    port: source.postgres.port,
    user: input.user || source.postgres.superuser,
    dbname: input.database || 'postgres',
    passfile: await defaultPgpassPath(ctx),
    connectTimeout: 10,
  });
}

/** Everything that stands in the way of a rewind, in words; empty when pg_rewind can run. */
async function blockers(ctx: ActionContext, source: Host, user: string, probe: RewindProbe): Promise<string[]> {
  const host = ctx.host;
  const out: string[] = [];
  if (!probe.binary) out.push(`${host.postgres.bindir}/pg_rewind is not installed on ${host.name}`);
  if (!probe.control) {
    out.push(`${host.pgdata} has no global/pg_control (a rewind or restore stopped half-way, or nothing is there): only a restore can bring it back`);
  } else {
    out.push(...controlBlockers(probe.control, (await ctx.factsOf(source.name)).system_identifier));
  }
  if (probe.source) out.push(...sourceBlockers(probe.source, source.name));
  else {
    out.push(
      `${host.name} cannot connect to ${source.name} (${source.address}:${source.postgres.port}) as ${user} the way pg_rewind would: ${probe.sourceError} ` +
        `(it needs a pg_hba.conf rule on ${source.name} and the password in ${host.postgres.osUser}'s .pgpass on ${host.name})`,
    );
  }
  return out;
}

function controlData(probe: RewindProbe): Record<string, unknown> {
  const c = probe.control;
  return {
    wal_log_hints: c?.walLogHints ?? null,
    data_checksums: c?.checksums ?? null,
    cluster_state: c?.state ?? null,
    timeline: c?.timeline ?? null,
    pg_control: c !== undefined,
  };
}

export const rewindAction: Action<RewindInput> = {
  name: 'rewind',
  summary:
    'pg_rewind a stopped old primary onto the new primary (the source) when its prerequisites hold: pg_rewind installed, ' +
    'wal_log_hints or data checksums, a clean shutdown, the same cluster, the source reachable as a role allowed to rewind. ' +
    'Otherwise reports why (registers possible: false, reasons, restore_needed: true) and changes nothing. When pg_rewind ' +
    'fails, global/pg_control is removed so the half-rewound directory can never start (restore_needed: true).',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['source'],
    properties: {
      source: { type: 'string', minLength: 1, description: 'The inventory host of the new primary: pg_rewind copies from its running server.' },
      user: {
        type: 'string',
        description:
          "The role pg_rewind connects as (a superuser, or one granted EXECUTE on pg_ls_dir, pg_stat_file and pg_read_binary_file). Default: the source's postgres.superuser. Its password comes from the OS user's .pgpass.",
      },
      database: { type: 'string', description: 'The database pg_rewind connects to (default postgres).' },
      allow_primary: {
        type: 'boolean',
        default: false,
        description: "The host is still the inventory's primary (promote.yml rebuilding the fenced old primary).",
      },
    },
  },
  destructive: () => true,
  changes: ['pgdata'],

  async check(ctx, input): Promise<Outcome> {
    const host = ctx.host;
    const pgdata = requirePgdata(host);
    if (host.role === 'primary' && !input.allow_primary) {
      throw new PgplayError({
        code: 'GUARD',
        message: `refusing to rewind ${host.name}: it is the inventory's primary`,
        hint: 'rewind the old primary once the inventory makes it a standby of the new one, or (promote.yml) with allow_primary: true after the fence',
      });
    }
    const source = sourceHost(ctx, input);
    const user = input.user || source.postgres.superuser;
    // Whose directory it is: never another host's PGDATA, never another cluster (refused in plan too).
    await guardDestruction(ctx, { verb: 'rewind', path: pgdata, cluster: true });
    const conninfo = await conninfoFor(ctx, source, input);
    const r = await ctx.transport.exec(rewindProbeArgv({ bindir: host.postgres.bindir, pgdata, conninfo }), {
      become: host.postgres.osUser,
      cwd: '/',
      signal: ctx.signal,
      timeoutMs: 60_000,
    });
    const probe = parseRewindProbe(r.stdout);
    if (probe.runningPid !== undefined) {
      const what = `PostgreSQL runs in ${pgdata} (pid ${probe.runningPid})`;
      if (!ctx.checkMode) {
        throw new PgplayError({ code: 'GUARD', message: `refusing to rewind ${host.name}: ${what}; pg_rewind never runs on a live server`, hint: 'stop it first' });
      }
    }
    const reasons = await blockers(ctx, source, user, probe);
    const data = { source: source.name, user, ...controlData(probe), reasons, rewound: false };
    if (reasons.length) {
      return {
        changed: false,
        msg: `pg_rewind is not possible: ${reasons.join('; ')}`,
        data: { ...data, possible: false, restore_needed: true },
      };
    }
    const note = probe.runningPid !== undefined ? ` (it runs now, pid ${probe.runningPid}: it must be stopped first)` : '';
    return { changed: true, msg: `would rewind ${pgdata} from ${source.name} as ${user}${note}`, data: { ...data, possible: true, restore_needed: false } };
  },

  async apply(ctx, input, planned): Promise<Outcome> {
    const pgdata = requirePgdata(ctx.host);
    const source = sourceHost(ctx, input);
    const conninfo = await conninfoFor(ctx, source, input);
    const started = Date.now();
    let r;
    try {
      r = await runAsOwner(ctx, pgRewindArgv(ctx.host.postgres.bindir, pgdata, conninfo), { env: { LC_ALL: 'C' } });
    } catch (e) {
      // Stopped (timeout) half-way: the directory is neither the old cluster nor the new one.
      await disarm(ctx, pgdata);
      throw e;
    }
    const output = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean);
    const ms = Date.now() - started;
    if (r.exitCode === 0) {
      const last = output.at(-1) ?? 'done';
      return {
        changed: true,
        msg: `rewound ${pgdata} from ${source.name} in ${(ms / 1000).toFixed(1)} s (pg_rewind: ${last})`,
        data: { ...planned.data, rewound: true, restore_needed: false, rewind_ms: ms, output: output.slice(-5) },
      };
    }
    // Half rewritten: it must never start. Removing pg_control fails loudly (the run stops) when it cannot.
    await disarm(ctx, pgdata);
    const error = output.slice(-3).join(' ') || `exit code ${r.exitCode}`;
    ctx.log(`pg_rewind failed (rc ${r.exitCode}): ${error}`);
    return {
      changed: true,
      msg: `pg_rewind failed (rc ${r.exitCode}): ${error}; removed ${pgdata}/global/pg_control so this directory can never be started: a restore must replace it`,
      data: { ...planned.data, rewound: false, restore_needed: true, rewind_failed: true, error, rewind_ms: ms },
    };
  },
};

export default rewindAction;
