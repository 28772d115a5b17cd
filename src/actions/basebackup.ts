import { posix } from 'node:path';
import { PgplayError, tailLines } from '../core/errors.js';
import type { HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import { buildConninfo } from '../postgres/conninfo.js';
import { pgpassLine } from '../postgres/pgpass.js';
import { copyWithBackupApi } from './basebackup-copy.js';
import { defaultPgpassPath } from './pgpass.js';
import { disarm, guardDestruction, guardUserData } from './identity-guard.js';
import { commandFailed, listDir, pgBin, requirePgdata, runAsOwner } from '../postgres/owner.js';
import { probe } from '../postgres/probe.js';
import { slotFor } from './recovery.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface BasebackupInput {
  from: string;
  method?: 'pg_basebackup' | 'copy';
  slot?: string | boolean;
  create_slot?: boolean;
  checkpoint?: 'fast' | 'spread';
  max_rate?: string | number;
  wal_method?: 'stream' | 'fetch';
  write_recovery?: boolean;
  passfile?: string;
  progress?: boolean;
  replace?: boolean;
  replace_sysid?: string;
}

/** Files that only a standby, a never-started copy or a server in recovery has in PGDATA. */
const COPY_MARKERS = ['standby.signal', 'recovery.signal', 'recovery.conf', 'backup_label'];

export const basebackupAction: Action<BasebackupInput> = {
  name: 'basebackup',
  connects: true,
  summary:
    'Copies a running upstream into this host\'s PGDATA with pg_basebackup, as the cluster\'s OS user, to build a standby without a backup ' +
    'repository. ok when PGDATA already holds a standby or fresh copy of that cluster (same system identifier); refuses (exit 3) a running ' +
    'target, the live primary, and a PGDATA holding anything else unless replace: true.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['from'],
    properties: {
      from: { type: 'string', minLength: 1, description: 'Inventory host to copy (a primary, or a standby); pg_basebackup connects to its address and port as replication.user.' },
      method: {
        type: 'string',
        enum: ['pg_basebackup', 'copy'],
        description:
          'pg_basebackup (default): the replication protocol, as replication.user. copy: pg_backup_start/pg_backup_stop on the upstream as its superuser, ' +
          'its files streamed with tar between the two hosts through pgplay, then the WAL of the backup; for when no pg_basebackup at least as new as the ' +
          'upstream is installed. copy takes no max_rate, wal_method, write_recovery or progress, and no tablespaces.',
      },
      slot: {
        type: ['string', 'boolean'],
        pattern: '^[a-z0-9_]{1,63}$',
        description: 'Replication slot that keeps the WAL the copy needs. true: pgplay_<host name>; false: none. Default: pgplay_<host name> when the inventory has replication.slots: true.',
      },
      create_slot: { type: 'boolean', default: true, description: 'Create the slot on the upstream when it does not exist yet (pg_basebackup -C).' },
      checkpoint: { type: 'string', enum: ['fast', 'spread'], default: 'fast', description: 'fast: the upstream checkpoints at once; spread: at its configured pace (gentler, slower).' },
      max_rate: {
        anyOf: [{ type: 'integer', minimum: 32, maximum: 1048576 }, { type: 'string', pattern: '^[0-9]+[kM]?$' }],
        description: 'Transfer limit: kB/s, or with a k or M suffix (e.g. "50M").',
      },
      wal_method: {
        type: 'string',
        enum: ['stream', 'fetch'],
        description: 'Default stream. stream: WAL is streamed during the copy (needed with a slot); fetch: collected at the end (the upstream must keep it).',
      },
      write_recovery: {
        type: 'boolean',
        description:
          'Let pg_basebackup write the standby configuration (-R). Its primary_conninfo then names passfile (the .pgpass the pgpass action keeps), which must hold the password. Default false: the recovery action writes it.',
      },
      passfile: { type: 'string', pattern: '^/', description: 'With write_recovery: the .pgpass named in the written conninfo. Default: .pgpass in the home of postgres.osUser.' },
      progress: { type: 'boolean', description: 'Run with --progress --verbose; the report is logged under the step when the copy ends.' },
      replace: {
        type: 'boolean',
        default: false,
        description:
          'Allow replacing what PGDATA holds (another cluster, other files, or a copy of this cluster that is no longer a standby such as a former primary): its contents are deleted (the directory itself stays) before the copy. Destructive: asks for confirmation (--yes answers). ' +
          'Another cluster is replaced only when it holds no user data (a freshly created one), unless replace_sysid names it.',
      },
      replace_sysid: {
        type: 'string',
        pattern: '^([0-9]+)?$',
        description: 'With replace: the system identifier of the other cluster in PGDATA that may be replaced although it holds user data (databases, tables or tablespaces made after initdb).',
      },
    },
  },

  destructive(input) {
    return input.replace === true;
  },

  changes: ['pgdata'],

  async check(ctx, input) {
    const p = await plan(ctx, input);
    return p.outcome;
  },

  async apply(ctx, input) {
    const p = await plan(ctx, input);
    if (!p.outcome.changed) return p.outcome;
    const started = Date.now();
    const pgdata = requirePgdata(ctx.host);
    if (p.wipe) {
      await disarm(ctx, pgdata);
      await wipe(ctx, pgdata);
    }
    const slot = await slotPlan(ctx, input, p.upstream);
    let lsns: { start_lsn: string; stop_lsn: string } | undefined;
    if (input.method === 'copy') {
      const c = await copyWithBackupApi(ctx, p.upstream, { slot, fast: input.checkpoint !== 'spread' });
      lsns = { start_lsn: c.startLsn, stop_lsn: c.stopLsn };
    } else {
      const r = await withPassfile(ctx, input, p.upstream, (passfile) => runBasebackup(ctx, input, p.upstream, pgdata, passfile, slot));
      if (r.exitCode !== 0) throw commandFailed(`pg_basebackup from ${p.upstream.name} into ${pgdata} failed`, r, hintFor(r.stderr));
      if (input.progress) for (const line of tailLines(r.stderr, 10)) ctx.log(line);
    }

    const copied = await probe(ctx);
    if (copied.system_identifier !== p.systemIdentifier) {
      throw new PgplayError({
        code: 'STEP_FAILED',
        message: `after pg_basebackup, ${pgdata} has system identifier ${copied.system_identifier ?? '(none)'}, not ${p.systemIdentifier} of ${p.upstream.name}`,
      });
    }
    return {
      changed: true,
      msg: `copied ${p.upstream.name} into ${pgdata}${p.wipe ? ' (old contents deleted)' : ''} in ${((Date.now() - started) / 1000).toFixed(1)}s`,
      data: {
        from: p.upstream.name,
        pgdata,
        method: input.method ?? 'pg_basebackup',
        system_identifier: p.systemIdentifier,
        ...lsns,
        slot: slot?.name ?? null,
        slot_created: slot?.create ?? false,
        wal_method: input.method === 'copy' ? 'copy' : input.wal_method ?? 'stream',
        write_recovery: input.write_recovery === true,
        replaced: p.wipe,
        duration_ms: Date.now() - started,
      },
      // Read just now, after the copy: the engine's refresh of the data directory.
      facts: copied,
    };
  },
};

export default basebackupAction;

interface Plan {
  outcome: Outcome;
  upstream: Host;
  systemIdentifier?: string;
  wipe: boolean;
}

async function plan(ctx: ActionContext, input: BasebackupInput): Promise<Plan> {
  const host = ctx.host;
  const pgdata = requirePgdata(host);
  const upstream = ctx.hosts[input.from];
  if (!upstream) {
    throw new PgplayError({ code: 'SEMANTIC', message: `basebackup.from: ${input.from} is not a host of the inventory`, expected: Object.keys(ctx.hosts).join(', ') });
  }
  if (upstream.name === host.name) throw new PgplayError({ code: 'SEMANTIC', message: `${host.name} cannot be copied into itself`, expected: 'another host in from' });
  if (input.wal_method === 'fetch' && slotFor(ctx, input.slot) !== undefined) {
    throw new PgplayError({ code: 'SEMANTIC', message: 'a replication slot needs wal_method stream', expected: 'wal_method: stream, or slot: false' });
  }
  if (input.method === 'copy') {
    const misplaced = (['max_rate', 'wal_method', 'write_recovery', 'progress'] as const).filter((k) => input[k] !== undefined && input[k] !== false);
    if (misplaced.length) {
      throw new PgplayError({ code: 'SEMANTIC', message: `method copy takes no ${misplaced.join(', ')}`, expected: 'those options only with method pg_basebackup' });
    }
  } else if (!ctx.inventory.replication?.user) {
    throw new PgplayError({ code: 'SEMANTIC', message: 'basebackup connects as the replication user, and the inventory has none', expected: 'replication: {user, password}' });
  }

  const [target, source] = await Promise.all([probe(ctx), probe(ctx, upstream.name)]);
  const sysid = source.system_identifier;
  if (!sysid || !source.running) {
    const why = !source.running ? 'PostgreSQL is not running there' : `its system identifier is unknown${source.error ? ` (${source.error})` : ''}`;
    if (ctx.checkMode) return { upstream, wipe: false, outcome: { changed: true, msg: `would copy ${upstream.name} into ${pgdata} (${why} yet)` } };
    throw new PgplayError({ code: 'STEP_FAILED', message: `cannot copy ${upstream.name}: ${why}`, hint: `start ${upstream.name} first` });
  }

  const markers = target.pgdata_present ? await presentMarkers(ctx, pgdata) : [];
  const sameCluster = target.pgdata_present && target.system_identifier === sysid;
  const isCopy = target.in_recovery === true || markers.length > 0;
  if (sameCluster && isCopy) {
    return {
      upstream,
      systemIdentifier: sysid,
      wipe: false,
      outcome: {
        changed: false,
        msg: `${pgdata} already holds ${upstream.name}'s cluster (system identifier ${sysid})`,
        data: { from: upstream.name, pgdata, system_identifier: sysid },
      },
    };
  }

  guardPrimary(ctx, host, target, upstream, source);
  // Another host's PGDATA (the primary's under another path) is never copied over; another cluster
  // needs replace, which the check below asks for.
  await guardDestruction(ctx, { verb: 'copy into', path: pgdata, cluster: false });
  if (target.running) {
    throw new PgplayError({
      code: 'GUARD',
      message: `refusing to copy into ${pgdata} on ${host.name}: PostgreSQL is running there (pid ${target.pid ?? '?'})`,
      hint: 'stop it first (postgres: {state: stopped}) if its data is to be replaced',
    });
  }

  const entries = target.pgdata_present ? ['PG_VERSION'] : await listDir(ctx, pgdata);
  const occupied = entries !== null && entries.length > 0;
  let what = '';
  if (occupied) {
    what = sameCluster
      ? `a copy of ${upstream.name}'s cluster that is not a standby (no ${COPY_MARKERS.slice(0, 3).join(', ')}: a former primary?)`
      : target.pgdata_present
        ? `another cluster (system identifier ${target.system_identifier ?? 'unknown'}, PostgreSQL ${target.pgdata_version ?? '?'})`
        : `other files (${entries!.slice(0, 5).join(', ')}${entries!.length > 5 ? ', ...' : ''})`;
    if (input.replace !== true) {
      throw new PgplayError({
        code: 'GUARD',
        message: `refusing to copy ${upstream.name} into ${pgdata} on ${host.name}: it holds ${what}`,
        hint: 'set replace: true to delete its contents first (the step then asks for confirmation; --yes answers it)',
      });
    }
    // Another cluster: replace deletes only one without user data, or the one replace_sysid names.
    if (target.pgdata_present && !sameCluster) {
      await guardUserData(ctx, { verb: 'copy into', replaceSysid: input.replace_sysid || undefined }, pgdata, target.system_identifier ?? 'unknown', what);
    }
  }
  const described = `${upstream.name} (${upstream.address}:${upstream.postgres.port})`;
  const how = input.method === 'copy' ? 'the backup API and tar' : 'pg_basebackup';
  return {
    upstream,
    systemIdentifier: sysid,
    wipe: occupied,
    outcome: {
      changed: true,
      msg: occupied
        ? `would delete what ${pgdata} holds (${what}) and copy ${described} into it`
        : `would copy ${described} into ${pgdata} with ${how}`,
    },
  };
}

/**
 * Never copy over the live primary. The inventory's primary is refused too, unless the facts show the
 * inventory is out of date: the upstream is itself a running primary (a promotion happened) and this
 * host is not running, which is exactly the rebuild of a failed primary as a standby of its successor.
 */
function guardPrimary(ctx: ActionContext, host: Host, target: HostFacts, upstream: Host, source: HostFacts): void {
  if (target.running && target.in_recovery === false) {
    throw new PgplayError({ code: 'GUARD', message: `refusing to copy into ${host.name}: it is a running primary (not in recovery)` });
  }
  if (host.role !== 'primary') return;
  const replacedByUpstream = source.running && source.in_recovery === false && !target.running;
  if (!replacedByUpstream) {
    throw new PgplayError({
      code: 'GUARD',
      message: `refusing to copy into ${host.name}: the inventory names it the primary, and ${upstream.name} is not a running primary that replaced it`,
      hint: 'copy into a standby or drill host; to rebuild a failed primary, copy it from the promoted server',
    });
  }
  ctx.log(`${host.name} is the inventory's primary, but ${upstream.name} is a running primary: rebuilding it as a copy of ${upstream.name}`);
}

async function presentMarkers(ctx: ActionContext, pgdata: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of COPY_MARKERS) {
    if ((await ctx.transport.stat(posix.join(pgdata, name), { become: ctx.host.postgres.osUser })).exists) out.push(name);
  }
  return out;
}

/** Deletes what PGDATA holds but keeps the directory: it may be a mount point, with its own mode and owner. */
export async function wipe(ctx: ActionContext, pgdata: string): Promise<void> {
  ctx.log(`deleting the contents of ${pgdata}`);
  const r = await runAsOwner(ctx, ['find', pgdata, '-mindepth', '1', '-maxdepth', '1', '-exec', 'rm', '-rf', '--', '{}', '+'], { env: { LC_ALL: 'C' } });
  if (r.exitCode !== 0) throw commandFailed(`cannot delete the contents of ${pgdata}`, r);
}

interface SlotPlan {
  name: string;
  create: boolean;
}

/** pg_basebackup -C fails when the slot exists (a rebuild, a second standby build): create it only when missing. */
async function slotPlan(ctx: ActionContext, input: BasebackupInput, upstream: Host): Promise<SlotPlan | undefined> {
  const name = slotFor(ctx, input.slot);
  if (!name) return undefined;
  if (input.create_slot === false) return { name, create: false };
  let client;
  try {
    client = await ctx.connectPostgres({ hostName: upstream.name });
    const res = await client.query('select 1 from pg_replication_slots where slot_name = $1', [name]);
    return { name, create: res.rowCount === 0 };
  } catch (e) {
    ctx.log(`cannot look up slot ${name} on ${upstream.name} (${e instanceof Error ? e.message : String(e)}); letting pg_basebackup create it`);
    return { name, create: true };
  } finally {
    await client?.end().catch(() => undefined);
  }
}

/**
 * The replication password reaches pg_basebackup only through a passfile: never argv, never the
 * environment (sudo and SSH would put an environment variable on a command line). Without
 * write_recovery it is a private temporary file, deleted afterwards; with write_recovery it is the
 * .pgpass that the written primary_conninfo names, so the standby keeps finding it.
 */
async function withPassfile<T>(ctx: ActionContext, input: BasebackupInput, upstream: Host, fn: (passfile: string) => Promise<T>): Promise<T> {
  if (input.write_recovery) return fn(input.passfile ?? (await defaultPgpassPath(ctx)));
  const replication = ctx.inventory.replication!;
  const password = replication.password ? await ctx.secret(replication.password) : undefined;
  if (!password) return fn(input.passfile ?? (await defaultPgpassPath(ctx)));
  const mk = await runAsOwner(ctx, ['mktemp', '-d', '/tmp/pgplay-basebackup.XXXXXX'], { env: { LC_ALL: 'C' }, timeoutMs: 30_000 });
  if (mk.exitCode !== 0) throw commandFailed('cannot create a temporary directory for the passfile', mk);
  const dir = mk.stdout.trim();
  const owner = ctx.host.postgres.osUser;
  try {
    const file = posix.join(dir, 'pgpass');
    const line = pgpassLine({ host: upstream.address, port: upstream.postgres.port, database: '*', user: replication.user, password });
    await ctx.transport.writeFile(file, line + '\n', { mode: 0o600, owner, become: owner });
    return await fn(file);
  } finally {
    await runAsOwner(ctx, ['rm', '-rf', '--', dir], { env: { LC_ALL: 'C' }, timeoutMs: 30_000 }).catch(() => undefined);
  }
}

async function runBasebackup(
  ctx: ActionContext,
  input: BasebackupInput,
  upstream: Host,
  pgdata: string,
  passfile: string,
  slot: SlotPlan | undefined,
) {
  const conninfo = buildConninfo({
    host: upstream.address,
    port: upstream.postgres.port,
    user: ctx.inventory.replication!.user,
    applicationName: ctx.host.name,
    passfile,
  });
  const argv = [
    await basebackupBinary(ctx),
    '--pgdata',
    pgdata,
    '--dbname',
    conninfo,
    '--no-password',
    '--wal-method',
    input.wal_method ?? 'stream',
    '--checkpoint',
    input.checkpoint ?? 'fast',
    '--label',
    `pgplay ${ctx.host.name}`,
  ];
  if (slot) argv.push('--slot', slot.name, ...(slot.create ? ['--create-slot'] : []));
  if (input.max_rate !== undefined) argv.push('--max-rate', String(input.max_rate));
  if (input.write_recovery) argv.push('--write-recovery-conf');
  if (input.progress) argv.push('--progress', '--verbose');
  ctx.log(`pg_basebackup from ${upstream.name}${slot ? ` (slot ${slot.name}${slot.create ? ', created' : ''})` : ''}`);
  return runAsOwner(ctx, argv, { env: { LC_ALL: 'C' } });
}

/** The host's own pg_basebackup, else the one on PATH (server-only installs carry no client tools). */
async function basebackupBinary(ctx: ActionContext): Promise<string> {
  const own = pgBin(ctx.host, 'pg_basebackup');
  const st = await ctx.transport.stat(own);
  return st.exists ? own : 'pg_basebackup';
}

function hintFor(stderr: string): string | undefined {
  if (/no password supplied|password authentication failed/i.test(stderr)) {
    return 'the replication password is missing or wrong: set replication.password in the inventory (and keep .pgpass with the pgpass action)';
  }
  if (/no pg_hba.conf entry/i.test(stderr)) return 'the upstream\'s pg_hba.conf needs a "host replication <user> <address>" rule for this host';
  if (/incompatible server version/i.test(stderr)) {
    return 'pg_basebackup must be at least as new as the upstream server: install that major\'s client tools, or use method: copy';
  }
  if (/already exists/i.test(stderr) && /slot/i.test(stderr)) return 'the slot exists on the upstream: set create_slot: false';
  return undefined;
}
