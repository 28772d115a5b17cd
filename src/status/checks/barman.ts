/**
 * With backup.tool barman, status reads what Barman itself says on the repository host
 * (backup.repoHost), as the barman OS user, through the status context's transports: the finished
 * backups (list-backups, then show-backup of each), where the server keeps them (show-servers'
 * backup_directory), and Barman's own health check (`barman check --nagios`, whose Nagios exit code is
 * the severity). The parsers are the barman action's (src/barman/output.ts).
 */
import { finishedBackups } from '../../barman/archive.js';
import { parseJsonOutput, parseNagios, serverDirectory, messagesOf } from '../../barman/output.js';
import { barmanServer, BARMAN_BIN, BARMAN_USER } from '../../barman/runner.js';
import type { BackupEntry } from '../../postgres/pgbackrest-info.js';
import type { ExecResult } from '../../transports/types.js';
import { backupHostName } from '../context.js';
import type { Finding, Severity, StatusContext } from '../types.js';

/** Barman's repository host, and the server name of this cluster there. */
export function barmanWhere(ctx: StatusContext): { host: string; server: string } {
  return { host: backupHostName(ctx)!, server: barmanServer(ctx.inventory) };
}

function run(ctx: StatusContext, args: string[]): Promise<ExecResult> {
  // The locale barman's JSON writer needs for its text; the barman user's home is its working directory.
  return ctx.exec(barmanWhere(ctx).host, ['env', 'LC_ALL=C.UTF-8', BARMAN_BIN, ...args], { become: BARMAN_USER });
}

async function barmanJson(ctx: StatusContext, command: string, args: string[]): Promise<Record<string, unknown>> {
  const r = await run(ctx, ['-f', 'json', command, ...args]);
  if (r.exitCode !== 0) {
    let errors: string[] = [];
    try {
      errors = messagesOf(parseJsonOutput(r.stdout)).errors;
    } catch {
      // No JSON: stderr says why.
    }
    const why = errors.join('; ') || r.stderr.trim().split('\n').slice(-2).join(' ') || `exit ${r.exitCode}`;
    throw new Error(`barman ${command} on ${barmanWhere(ctx).host} failed: ${why}`);
  }
  return parseJsonOutput(r.stdout);
}

/** The server's finished backups, oldest first, as full backup entries. */
export function listBarmanBackups(ctx: StatusContext): Promise<BackupEntry[]> {
  return finishedBackups(barmanWhere(ctx).server, (command, args) => barmanJson(ctx, command, args));
}

/** Where Barman keeps the server's backups and WAL (its backup_directory). */
export async function barmanBackupDirectory(ctx: StatusContext): Promise<string> {
  const { host, server } = barmanWhere(ctx);
  const dir = serverDirectory(await barmanJson(ctx, 'show-servers', [server]), server, 'backup_directory');
  if (!dir) throw new Error(`barman show-servers ${server} on ${host} names no backup_directory`);
  return dir;
}

const NAGIOS: Record<number, Severity> = { 0: 'ok', 1: 'warning', 2: 'critical' };

/** `barman check --nagios SERVER`, checked now: its exit code is the severity, the failed checks named. */
export async function barmanCheckFinding(ctx: StatusContext): Promise<Finding> {
  const { host, server } = barmanWhere(ctx);
  const r = await run(ctx, ['check', '--nagios', server]);
  const n = parseNagios(r.stdout, server);
  const severity = NAGIOS[r.exitCode] ?? 'critical';
  const values = { passed: severity === 'ok', age_seconds: 0, run: null };
  if (severity === 'ok') return { severity, host, message: `barman check ${server}: ${n.summary}`, values };
  const why = n.failed.length ? n.failed.join(', ') : n.summary || r.stderr.trim().split('\n').slice(-2).join(' ') || `exit ${r.exitCode}`;
  return { severity, host, message: `barman check ${server} ${severity === 'warning' ? 'warns' : 'failed'}: ${why}`, values };
}
