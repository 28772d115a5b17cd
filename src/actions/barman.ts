/**
 * The barman action: Barman 3.4's commands for backup.tool barman, run on the repository host
 * (backup.repoHost) as the barman OS user, with JSON output read by src/barman/output.ts and failures
 * explained by src/barman/errors.ts.
 *
 * - version: Barman is installed and serves the cluster's PostgreSQL major; refused (exit 3) otherwise.
 * - check: `barman check`; every failed check named, with its hint (--nagios with nagios: true).
 * - switch-wal: `barman switch-wal --force --archive`: the primary switches WAL and Barman waits until
 *   the segment is archived (proves archiving end to end).
 * - backup: `barman backup --wait` (the backup and the WAL it needs); always a change.
 * - list-backups, show-backup: read only, parsed from JSON.
 * - delete: one backup by id; changed when it was there.
 * - cron: `barman cron` (archives incoming WAL, starts receive-wal, enforces retention_policy); changed
 *   when retention deleted backups (they are listed).
 * - create-slot: `barman receive-wal --create-slot` when the primary has no slot of that name.
 * - reset-receive-wal: after the server's config names a new primary (promotion, restore): the running
 *   receive-wal is stopped (it streams from the old one) and its position reset to the new primary's
 *   slot (`barman receive-wal --stop`, then `--reset`); barman cron starts it again. WAL between the
 *   old position and the new one reaches Barman through archive_command (archiver = on).
 * - recover: see barman-recover.ts (the step runs on the target database host).
 */
import { PgplayError } from '../core/errors.js';
import { sleep } from '../core/sleep.js';
import type { Host } from '../model/inventory.js';
import { parseCheck, parseNagios, parseShowBackup, type BarmanBackup } from '../barman/output.js';
import { barmanHost, barmanServer, BarmanRunner, listBackups } from '../barman/runner.js';
import { barmanSupports, parseBarmanVersion } from '../barman/versions.js';
import { exportBarman } from './barman-export.js';
import { recover, recoverGuardsOnly } from './barman-recover.js';
import { BARMAN_COMMANDS, type BarmanCommand, type BarmanInput } from './barman-input.js';
import type { Action, ActionContext, Outcome } from './types.js';

export type { BarmanCommand, BarmanInput } from './barman-input.js';

/** Commands that only read: they may run for real under plan when a step says check_mode: false. */
const READS_ONLY = new Set<BarmanCommand>(['version', 'check', 'list-backups', 'show-backup']);

/** The primary Barman's server follows: the one named (a promoted or restored host), else the inventory's. */
export function primaryOf(ctx: { hosts: Record<string, Host> }, named?: string): Host {
  if (named) {
    const h = ctx.hosts[named];
    if (!h) throw new PgplayError({ code: 'SEMANTIC', message: `barman: primary ${named} is not a host of the inventory`, expected: 'a database host of the inventory' });
    return h;
  }
  const p = Object.values(ctx.hosts).find((h) => h.role === 'primary');
  if (!p) throw new PgplayError({ code: 'SEMANTIC', message: 'the inventory has no primary for Barman to back up', expected: 'a host with role primary' });
  return p;
}

export function runnerFor(ctx: ActionContext): BarmanRunner {
  if (ctx.inventory.backup?.tool !== 'barman') {
    throw new PgplayError({ code: 'SEMANTIC', message: `the barman action needs backup.tool barman (the inventory has ${ctx.inventory.backup?.tool ?? 'no backup'})`, expected: 'backup.tool: barman' });
  }
  return new BarmanRunner(ctx, barmanHost(ctx, ctx.inventory), barmanServer(ctx.inventory));
}

/** Refuses (exit 3) when Barman is missing or cannot serve the primary's major, before anything changes. */
export async function fitness(ctx: ActionContext, runner: BarmanRunner): Promise<{ version: string; major: number }> {
  const major = primaryOf(ctx).postgres.version;
  const r = await runner.run('--version', [], { json: false });
  const version = parseBarmanVersion(`${r.stdout}\n${r.stderr}`);
  if (!version) throw new PgplayError({ code: 'GUARD', message: `cannot read Barman's version on ${runner.host.name}: ${r.stdout.trim() || r.stderr.trim()}` });
  const fit = barmanSupports(version, major);
  if (!fit.ok) {
    throw new PgplayError({
      code: 'GUARD',
      message: `Barman on ${runner.host.name} cannot serve this cluster: ${fit.reason}; nothing was changed`,
      hint: 'upgrade Barman on the repository host (EnterpriseDB packages), or use backup.tool pgbackrest or basebackup where they serve this major',
    });
  }
  return { version, major };
}

function describeBackups(backups: BarmanBackup[]): string {
  return backups.length ? backups.map((b) => `${b.id} ${b.status}${b.retention ? ` ${b.retention}` : ''}`).join(', ') : 'none';
}

async function check(ctx: ActionContext, runner: BarmanRunner, input: BarmanInput): Promise<Outcome> {
  const server = runner.server;
  if (input.nagios) {
    if (input.except?.length) throw new PgplayError({ code: 'SEMANTIC', message: 'barman check: except is not understood with nagios', expected: 'nagios: false, or no except' });
    const r = await runner.run('check', ['--nagios', server], { json: false, acceptExit: [1, 2] });
    const n = parseNagios(r.stdout, server);
    if (!n.ok) {
      throw new PgplayError({
        code: 'STEP_FAILED',
        message: `barman check of server ${server} failed: ${n.failed.length ? n.failed.join(', ') : n.summary} (exit ${r.exitCode}: ${n.summary})`,
        hint: `run \`barman check ${server}\` on ${runner.host.name} as barman for the hints`,
      });
    }
    return { changed: false, msg: n.summary, data: { failed: [], nagios: n.summary } };
  }
  const r = await runner.run('check', [server], { acceptExit: [1] });
  const results = parseCheck(r.json, server);
  const excepted = new Set(input.except ?? []);
  const failed = results.filter((c) => !c.ok && !excepted.has(c.name));
  const tolerated = results.filter((c) => !c.ok && excepted.has(c.name)).map((c) => c.name);
  if (failed.length || (r.exitCode !== 0 && results.length === 0)) {
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `barman check of server ${server} failed: ${failed.length ? failed.map((c) => `${c.name}${c.hint ? ` (${c.hint})` : ''}`).join('; ') : (r.messages.errors.join('; ') || `exit ${r.exitCode}`)}`,
      hint: failed.some((c) => /wal_archive|continuous_archiving|archive_mode|archive_command/.test(c.name))
        ? "WAL does not reach Barman: the primary's archive_command (barman-wal-archive) and its SSH trust to barman on the repository host, pg_stat_archiver on the primary"
        : undefined,
    });
  }
  return {
    changed: false,
    msg: `barman check ${server}: ${results.length - tolerated.length} checks OK${tolerated.length ? `; failing but allowed here: ${tolerated.join(', ')}` : ''}`,
    data: { checks: results.map((c) => c.name), failed: [], tolerated },
  };
}

async function backup(runner: BarmanRunner, apply: boolean): Promise<Outcome> {
  if (!apply) return { changed: true, msg: `would take a backup of server ${runner.server} (barman backup --wait)` };
  const started = Date.now();
  const r = await runner.run('backup', ['--wait', runner.server]);
  const id = typeof r.json.backup_id === 'string' ? r.json.backup_id : undefined;
  const status = String(r.json.status ?? '');
  if (!id || status !== 'DONE') {
    throw new PgplayError({ code: 'STEP_FAILED', message: `barman backup of server ${runner.server} ended with status ${status || 'unknown'}${r.messages.errors.length ? `: ${r.messages.errors.join('; ')}` : ''}` });
  }
  return { changed: true, msg: `backup ${id} of server ${runner.server} in ${((Date.now() - started) / 1000).toFixed(1)}s`, data: { backup_id: id, status, duration_ms: Date.now() - started } };
}

async function cron(ctx: ActionContext, runner: BarmanRunner, apply: boolean): Promise<Outcome> {
  const before = await listBackups(runner);
  const policy = ctx.inventory.backup?.barman?.retention;
  const what = policy?.redundancy ? `REDUNDANCY ${policy.redundancy}` : policy?.recoveryWindowDays ? `RECOVERY WINDOW OF ${policy.recoveryWindowDays} DAYS` : 'no retention policy';
  if (!apply) {
    // cron also archives incoming WAL and starts receive-wal: it always runs; apply says what it deleted.
    const obsolete = before.filter((b) => b.retention === 'OBSOLETE').map((b) => b.id);
    return { changed: true, msg: `would run barman cron${obsolete.length ? `, deleting ${obsolete.join(', ')}` : ''} (${what})`, data: { deleted: obsolete } };
  }
  await runner.run('cron', []);
  const after = new Set((await listBackups(runner)).map((b) => b.id));
  const deleted = before.filter((b) => !after.has(b.id)).map((b) => b.id);
  return {
    changed: deleted.length > 0,
    msg: deleted.length ? `retention (${what}) deleted ${deleted.join(', ')}` : `barman cron ran; retention (${what}) deleted nothing`,
    data: { deleted, kept: [...after] },
  };
}

async function createSlot(ctx: ActionContext, runner: BarmanRunner, input: BarmanInput, apply: boolean): Promise<Outcome> {
  const slot = barmanSlotName(runner.server);
  const primary = primaryOf(ctx, input.primary);
  const client = await ctx.connectPostgres({ hostName: primary.name });
  let exists: boolean;
  try {
    exists = (await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rowCount! > 0;
  } finally {
    await client.end().catch(() => undefined);
  }
  if (exists) return { changed: false, msg: `${primary.name} has the replication slot ${slot}`, data: { slot } };
  if (!apply) return { changed: true, msg: `would create the replication slot ${slot} on ${primary.name} (barman receive-wal --create-slot)`, data: { slot } };
  await runner.run('receive-wal', ['--create-slot', runner.server]);
  return { changed: true, msg: `created the replication slot ${slot} on ${primary.name}`, data: { slot } };
}

/** How long barman receive-wal --reset is retried while the stopped receive-wal still holds its lock. */
const RESET_PATIENCE_MS = 30_000;

async function resetReceiveWal(ctx: ActionContext, runner: BarmanRunner, input: BarmanInput, apply: boolean): Promise<Outcome> {
  const primary = primaryOf(ctx, input.primary).name;
  if (!apply) return { changed: true, msg: `would stop receive-wal of server ${runner.server} and reset its position to ${primary}'s (barman receive-wal --stop, --reset)` };
  // Exit 1 with "no such process" when none runs: nothing to stop.
  const stop = await runner.run('receive-wal', ['--stop', runner.server], { json: false, acceptExit: [1] });
  if (stop.exitCode !== 0 && !/no such process/.test(stop.stdout + stop.stderr)) {
    throw new PgplayError({ code: 'STEP_FAILED', message: `barman receive-wal --stop ${runner.server} failed: ${(stop.stdout + stop.stderr).trim()}` });
  }
  const deadline = Date.now() + RESET_PATIENCE_MS;
  for (;;) {
    const r = await runner.run('receive-wal', ['--reset', runner.server], { json: false });
    const out = `${r.stdout}\n${r.stderr}`;
    // --stop signalled it; until it has exited it holds the lock and --reset says so (exit 0).
    if (/Process is still running/.test(out)) {
      if (Date.now() > deadline) throw new PgplayError({ code: 'STEP_FAILED', message: `receive-wal of server ${runner.server} on ${runner.host.name} did not stop within ${RESET_PATIENCE_MS / 1000}s` });
      await sleep(200, ctx.signal);
      continue;
    }
    const reset = /Resetting receive-wal/.test(out);
    return {
      changed: reset || stop.exitCode === 0,
      msg: reset
        ? `receive-wal of server ${runner.server} stopped and reset to the position of ${primary}'s slot (barman cron starts it)`
        : `receive-wal of server ${runner.server}${stop.exitCode === 0 ? ' stopped;' : ''} its position is aligned with ${primary}`,
      data: { stopped: stop.exitCode === 0, reset },
    };
  }
}

/** The slot pgplay's Barman config names (templates/barman-server.conf.hbs writes the same). */
export function barmanSlotName(server: string): string {
  return `barman_${server}`;
}

async function run(ctx: ActionContext, input: BarmanInput, apply: boolean): Promise<Outcome> {
  try {
    return await runCommand(ctx, input, apply);
  } catch (e) {
    // Under plan the step that writes the server's config has not run yet: say so instead of failing.
    if (ctx.checkMode && e instanceof PgplayError && /Unknown server/i.test(e.message)) {
      return { changed: input.command !== 'check' && !READS_ONLY.has(input.command), skipped: true, msg: `Barman has no server ${barmanServer(ctx.inventory)} yet: an earlier step of this run writes its configuration` };
    }
    throw e;
  }
}

async function runCommand(ctx: ActionContext, input: BarmanInput, apply: boolean): Promise<Outcome> {
  const runner = runnerFor(ctx);
  switch (input.command) {
    case 'version': {
      const { version, major } = await fitness(ctx, runner);
      return { changed: false, msg: `Barman ${version} on ${runner.host.name} serves PostgreSQL ${major}`, data: { version, major } };
    }
    case 'check':
      return check(ctx, runner, input);
    case 'switch-wal': {
      if (!apply) return { changed: true, msg: `would switch the primary's WAL and wait until Barman archives it (server ${runner.server})` };
      await runner.run('switch-wal', ['--force', '--archive', '--archive-timeout', String(input.archive_timeout ?? 60), runner.server]);
      return { changed: true, msg: `the primary switched WAL and server ${runner.server} archived it` };
    }
    case 'backup':
      return backup(runner, apply);
    case 'list-backups': {
      const backups = await listBackups(runner);
      const done = backups.filter((b) => b.status === 'DONE');
      return {
        changed: false,
        msg: `server ${runner.server}: ${describeBackups(backups)}`,
        data: { backups, ids: backups.map((b) => b.id), newest: done[0]?.id ?? null, count: done.length },
      };
    }
    case 'show-backup': {
      const r = await runner.run('show-backup', [runner.server, input.backup_id || 'latest']);
      const detail = parseShowBackup(r.json, runner.server);
      return { changed: false, msg: `backup ${detail.id}: ${detail.status}, WAL ${detail.beginWal ?? '?'}..${detail.endWal ?? '?'}`, data: { ...detail } };
    }
    case 'delete': {
      const id = input.backup_id;
      if (!id) throw new PgplayError({ code: 'SEMANTIC', message: 'barman delete needs backup_id', expected: 'backup_id: an id from list-backups' });
      const present = (await listBackups(runner)).some((b) => b.id === id);
      if (!present) return { changed: false, msg: `server ${runner.server} has no backup ${id}` };
      if (!apply) return { changed: true, msg: `would delete backup ${id} of server ${runner.server}` };
      await runner.run('delete', [runner.server, id]);
      if ((await listBackups(runner)).some((b) => b.id === id)) {
        throw new PgplayError({ code: 'STEP_FAILED', message: `barman kept backup ${id} of server ${runner.server}`, hint: 'minimum_redundancy (backup.barman.minimumRedundancy) or a keep annotation protects it' });
      }
      return { changed: true, msg: `deleted backup ${id} of server ${runner.server}`, data: { deleted: [id] } };
    }
    case 'cron':
      return cron(ctx, runner, apply);
    case 'create-slot':
      return createSlot(ctx, runner, input, apply);
    case 'reset-receive-wal':
      return resetReceiveWal(ctx, runner, input, apply);
    case 'recover':
      return apply ? recover(ctx, runner, input) : recoverGuardsOnly(ctx, runner, input);
  }
}

const TARGET = (what: string) => ({ type: 'string', minLength: 1, description: `recover: --target-${what}` });

export const barmanAction: Action<BarmanInput> = {
  name: 'barman',
  connects: true,
  summary:
    'Barman 3.4 on the repository host (backup.tool barman), as the barman OS user: version (refused where Barman cannot serve the major), check ' +
    '(every failed check by name; --nagios), switch-wal --force --archive, backup --wait, list-backups, show-backup, delete, cron (retention), ' +
    'create-slot (receive-wal --create-slot), reset-receive-wal (receive-wal --stop and --reset after the server follows a new primary), recover (on the target database host, guarded like every restore; the backup is kept from retention meanwhile).',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['command'],
    properties: {
      command: { enum: [...BARMAN_COMMANDS], description: 'The Barman command.' },
      nagios: { type: 'boolean', default: false, description: 'check: barman check --nagios (its one-line summary names the failed checks).' },
      except: {
        type: 'array',
        items: { type: 'string', pattern: '^[a-z0-9_]+$' },
        description:
          'check: failed checks that do not fail the step, by their JSON name (e.g. minimum_redundancy_requirements and backup_maximum_age before the first backup); they are reported. Not with nagios.',
      },
      backup_id: { type: 'string', pattern: '^[A-Za-z0-9_:.-]*$', description: "show-backup, delete, recover: a backup id of list-backups (show-backup and recover: '' or none for the newest)." },
      archive_timeout: { type: 'integer', minimum: 1, description: 'switch-wal: seconds Barman waits for the WAL segment (default 60).' },
      target_time: TARGET('time'),
      target_name: TARGET('name (a restore point)'),
      target_xid: TARGET('xid'),
      target_lsn: TARGET('lsn'),
      target_immediate: { type: 'boolean', description: 'recover: --target-immediate (end at the backup\'s consistency point).' },
      target_action: { enum: ['pause', 'promote', 'shutdown'], description: 'recover: --target-action, with a target.' },
      standby_mode: { type: 'boolean', description: 'recover: --standby-mode (standby.signal; pgplay\'s recovery action writes primary_conninfo).' },
      get_wal: { type: 'boolean', description: "recover: --get-wal (restore_command barman-wal-restore, naming the Barman host by its FQDN as Barman sees it; without it pgplay's recovery action writes barman-wal-restore with the inventory address)." },
      allow_primary: { type: 'boolean', default: false, description: "recover: over the inventory's primary (stopped): rebuilding a fenced old primary." },
      replace: { type: 'boolean', default: false, description: 'recover: replace another cluster in PGDATA (one without user data, unless replace_sysid names it).' },
      replace_sysid: { type: 'string', pattern: '^([0-9]+)?$', description: 'recover, with replace: the system identifier of the other cluster that may be replaced although it holds user data.' },
      primary: {
        type: 'string',
        pattern: '^[A-Za-z0-9_.-]*$',
        description: "create-slot, reset-receive-wal: the host Barman's server follows when it is not yet the inventory's primary (promote.yml's candidate, restore.yml's host); '' or none: the inventory's primary.",
      },
    },
  },
  destructive(input) {
    return input.command === 'recover' || input.command === 'delete';
  },
  readOnly(input) {
    return READS_ONLY.has(input.command);
  },
  changesRole(input) {
    return input.command === 'recover' && input.target_action === 'promote' ? 'promotes' : false;
  },
  // recover writes the target's PGDATA; every other command touches only Barman's catalogue.
  changes: (input) => (input.command === 'recover' ? ['pgdata'] : []),

  async check(ctx, input) {
    return run(ctx, input, false);
  },

  async apply(ctx, input) {
    return run(ctx, input, true);
  },

  async exportShell(ctx, input, planned) {
    return exportBarman(ctx, runnerFor(ctx), input, planned);
  },
};

export default barmanAction;
