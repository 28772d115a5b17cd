/**
 * The barman action's break-glass export (Action.exportShell): what apply would run, as shell.
 *
 * Barman runs as the barman OS user on the repository host. A step on that host gets
 * `runuser -u barman -- barman ...`; recover's step runs on the database host to fill, so its lines reach
 * barman@repository over SSH as the PostgreSQL OS user, the trust include/backup/barman/trust.yml set up
 * (barman-wal-restore uses the same), and Barman copies the backup back over its own trust to that host.
 * Every value is quoted for the remote shell and again for the local one. The read-only commands (version,
 * check, list-backups, show-backup) are comments; recover's guards that need pgplay ran at plan time and
 * are named in a comment, the one that needs nothing (a server running there) is checked when the
 * script runs. No secret is involved: Barman's password lives in barman's ~/.pgpass on the repository host.
 */
import { PgplayError } from '../core/errors.js';
import type { BarmanRunner } from '../barman/runner.js';
import { BARMAN_BIN } from '../barman/runner.js';
import { recoverGuardsOnly, recoverOptions, remoteArgs, type RecoverPlan } from './barman-recover.js';
import type { BarmanInput } from './barman-input.js';
import { commandLine, emptyPgdataLines } from './shell-export.js';
import type { ActionContext, Outcome, ShellExport } from './types.js';

/**
 * barman with these arguments as Barman's user on the repository host, from the step's host: directly when
 * the step runs there or Barman runs beside the database hosts as their OS user (backup.barman.local), over
 * the SSH trust otherwise.
 */
function barmanLine(ctx: ActionContext, runner: BarmanRunner, args: string[]): string {
  const argv = [BARMAN_BIN, ...runner.config, ...args];
  if (ctx.host.name === runner.host.name || isLocal(ctx)) return commandLine(argv, runner.user);
  const ssh = ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', `${runner.user}@${runner.host.address}`, commandLine(argv)];
  return commandLine(ssh, ctx.host.postgres.osUser);
}

const isLocal = (ctx: ActionContext) => ctx.inventory.backup?.barman?.local === true;

const REFUSES = '(pgplay refuses to go on otherwise)';

export async function exportBarman(ctx: ActionContext, runner: BarmanRunner, input: BarmanInput, planned: Outcome): Promise<ShellExport> {
  const server = runner.server;
  const line = (...args: string[]) => barmanLine(ctx, runner, args);
  switch (input.command) {
    case 'version':
      return { comments: [`check: \`${line('--version')}\` is a Barman that serves PostgreSQL ${ctx.inventory.postgres.version} ${REFUSES}`] };
    case 'check': {
      const except = input.except?.length ? `, except ${input.except.join(', ')}` : '';
      return { comments: [`check: every check of \`${line('check', ...(input.nagios ? ['--nagios'] : []), server)}\` is OK${except} ${REFUSES}`] };
    }
    case 'list-backups':
      return { comments: [`reads: ${line('list-backups', server)}`] };
    case 'show-backup':
      return { comments: [`reads: ${line('show-backup', server, input.backup_id || 'latest')}`] };
    case 'switch-wal':
      return { commands: [line('switch-wal', '--force', '--archive', '--archive-timeout', String(input.archive_timeout ?? 60), server)] };
    case 'backup':
      return { commands: [line('backup', '--wait', server)] };
    case 'cron':
      return { comments: ['also archives incoming WAL and enforces the retention policy'], commands: [line('cron')] };
    case 'create-slot':
      return { commands: [line('receive-wal', '--create-slot', server)] };
    case 'reset-receive-wal':
      // pgplay retries --reset while the stopped receive-wal still holds its lock; a script run by hand may need a second try.
      return {
        comments: [`receive-wal follows the server's new primary${input.primary ? ` (${input.primary})` : ''}: stopped, its position reset; barman cron starts it again`],
        commands: [line('receive-wal', '--stop', server), line('receive-wal', '--reset', server)],
      };
    case 'delete':
      if (!input.backup_id) throw new PgplayError({ code: 'SEMANTIC', message: 'barman delete needs backup_id', expected: 'backup_id: an id from list-backups' });
      return { commands: [line('delete', server, input.backup_id)] };
    case 'recover':
      return exportRecover(ctx, runner, input, planned);
  }
}

async function exportRecover(ctx: ActionContext, runner: BarmanRunner, input: BarmanInput, planned: Outcome): Promise<ShellExport> {
  const options = recoverOptions(input);
  const data = planned.data as Partial<RecoverPlan> | undefined;
  const p = data?.id && data.pgdata ? (data as RecoverPlan) : (await recoverGuardsOnly(ctx, runner, input)).data;
  const owner = ctx.host.postgres.osUser;
  const server = runner.server;
  const line = (...args: string[]) => barmanLine(ctx, runner, args);
  return {
    comments: [
      `recovers backup ${p.id} of Barman's server ${server} on ${runner.host.name} (${input.backup_id ? 'as named' : 'the newest at plan time'}) into ${p.pgdata}; pgplay checked that ${p.pgdata} holds no other cluster it must not replace`,
      isLocal(ctx)
        ? `Barman runs on this machine as ${owner} (backup.barman.local) and writes ${p.pgdata} itself`
        : `Barman copies it over SSH as ${owner}@${ctx.host.address}; this host reaches ${runner.user}@${runner.host.address} as ${owner} (include/backup/barman/trust.yml)`,
      ...(p.kept
        ? [`backup ${p.id} is kept already (barman keep): retention cannot delete it during the copy`]
        : [`retention cannot delete the backup during the copy: it is kept (barman keep) and released after; if the copy fails, release it by hand: ${line('keep', '--release', server, p.id)}`]),
    ],
    commands: [
      ...emptyPgdataLines(ctx.host, p.pgdata, 'recovered'),
      ...(p.kept ? [] : [line('keep', '--target', 'full', server, p.id)]),
      line('recover', ...remoteArgs(ctx, runner), ...options, server, p.id, p.pgdata),
      ...(p.kept ? [] : [line('keep', '--release', server, p.id)]),
    ],
  };
}
