/**
 * What pg_rewind needs, as pure knowledge: the old primary's pg_control (read with pg_controldata
 * while it is stopped), the source's answer to one query made from the old primary's host exactly as
 * pg_rewind will connect, and the argv. The rewind action (src/actions/rewind.ts) runs the commands.
 *
 * pg_rewind can only rewind a data directory whose pages record every hint-bit change in WAL
 * (wal_log_hints = on, or data checksums), that was shut down cleanly (else it would start it in
 * single-user mode for crash recovery first), that holds the same cluster as the source, and only
 * from a source it can reach as a role that is a superuser or may run the four functions it reads
 * the source's files with. When any of that does not hold, the rejoin takes a delta restore instead;
 * each blocker is said in words a DBA can act on.
 */
import { shQuote } from '../transports/quote.js';

/** The fields of `pg_controldata` (LC_ALL=C) that decide whether a rewind can work. */
export interface RewindControl {
  systemIdentifier?: string;
  state?: string;
  timeline?: number;
  walLogHints?: boolean;
  /** Data page checksum version: 0 is off. */
  checksums?: boolean;
}

export function parseControldata(text: string): RewindControl {
  const field = (label: string) => new RegExp(`^${label}:\\s*(.*?)\\s*$`, 'm').exec(text)?.[1];
  const out: RewindControl = {};
  const sysid = field('Database system identifier');
  if (sysid && /^\d+$/.test(sysid)) out.systemIdentifier = sysid;
  const state = field('Database cluster state');
  if (state) out.state = state;
  const tl = field("Latest checkpoint's TimeLineID");
  if (tl && /^\d+$/.test(tl)) out.timeline = Number(tl);
  const hints = field('wal_log_hints setting');
  if (hints === 'on' || hints === 'off') out.walLogHints = hints === 'on';
  const checksums = field('Data page checksum version');
  if (checksums && /^\d+$/.test(checksums)) out.checksums = Number(checksums) !== 0;
  return out;
}

/** States of a cleanly stopped server: pg_rewind takes them without crash recovery of its own. */
const CLEAN_STATES = new Set(['shut down', 'shut down in recovery']);

/** Why pg_rewind cannot rewind this directory (empty: its side allows it). */
export function controlBlockers(control: RewindControl, sourceSystemIdentifier: string | undefined): string[] {
  const out: string[] = [];
  if (control.walLogHints === undefined && control.checksums === undefined) {
    out.push('pg_controldata did not say whether wal_log_hints or data checksums are on');
  } else if (!control.walLogHints && !control.checksums) {
    out.push('wal_log_hints was off when the server last ran and the cluster has no data checksums (pg_rewind needs one of them)');
  }
  if (!control.state) out.push('pg_controldata did not say the cluster state');
  else if (!CLEAN_STATES.has(control.state)) out.push(`the cluster was not shut down cleanly (pg_control says "${control.state}")`);
  if (sourceSystemIdentifier && control.systemIdentifier && control.systemIdentifier !== sourceSystemIdentifier) {
    out.push(`it holds another cluster (system identifier ${control.systemIdentifier}, the source's is ${sourceSystemIdentifier})`);
  }
  return out;
}

/**
 * The functions pg_rewind calls on the source (its documentation: a role without superuser needs
 * EXECUTE on exactly these).
 */
export const REWIND_FUNCTIONS = [
  'pg_catalog.pg_ls_dir(text, boolean, boolean)',
  'pg_catalog.pg_stat_file(text, boolean)',
  'pg_catalog.pg_read_binary_file(text)',
  'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
];

/** One line `user|superuser|may-run-the-functions|in-recovery`, asked through the connection pg_rewind will use. */
export const SOURCE_QUERY =
  "SELECT current_user || '|' || r.rolsuper || '|' || (" +
  REWIND_FUNCTIONS.map((f) => `has_function_privilege('${f}', 'EXECUTE')`).join(' AND ') +
  ") || '|' || pg_is_in_recovery() FROM pg_roles r WHERE r.rolname = current_user";

export interface SourceAnswer {
  user: string;
  superuser: boolean;
  functions: boolean;
  inRecovery: boolean;
}

export function parseSourceAnswer(stdout: string): SourceAnswer | undefined {
  const m = /^([^|\n]+)\|(true|false)\|(true|false)\|(true|false)$/m.exec(stdout.trim());
  if (!m) return undefined;
  return { user: m[1]!, superuser: m[2] === 'true', functions: m[3] === 'true', inRecovery: m[4] === 'true' };
}

export function sourceBlockers(answer: SourceAnswer, source: string): string[] {
  const out: string[] = [];
  if (!answer.superuser && !answer.functions) {
    out.push(
      `${answer.user} on ${source} is no superuser and may not run ${REWIND_FUNCTIONS.join(', ')} ` +
        `(GRANT EXECUTE ON FUNCTION ... TO ${answer.user}, or connect as a superuser)`,
    );
  }
  if (answer.inRecovery) out.push(`${source} is in recovery: pg_rewind's source must be the new primary`);
  return out;
}

/**
 * The check's script, run as the PGDATA owner on the host to rewind: can pg_rewind run here, what does
 * pg_control say, and does the source answer as pg_rewind will connect (psql -w: never a prompt).
 * Sections are marked so that one failing part does not hide the others.
 */
export function rewindProbeArgv(o: { bindir: string; pgdata: string; conninfo: string }): string[] {
  const script = [
    'bindir=$1; pgdata=$2; conninfo=$3',
    'if [ -x "$bindir/pg_rewind" ]; then echo "pg_rewind=yes"; else echo "pg_rewind=no"; fi',
    'pid=; [ -f "$pgdata/postmaster.pid" ] && pid=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null)',
    'case "$pid" in ""|*[!0-9]*) ;; *) kill -0 "$pid" 2>/dev/null && echo "running=$pid" ;; esac',
    'if [ -f "$pgdata/global/pg_control" ]; then echo "pg_control=yes"; else echo "pg_control=no"; fi',
    'echo "--- controldata"',
    '[ -f "$pgdata/global/pg_control" ] && LC_ALL=C "$bindir/pg_controldata" -D "$pgdata" 2>&1',
    'echo "--- source"',
    'psql=$bindir/psql; [ -x "$psql" ] || psql=psql',
    `LC_ALL=C PGCONNECT_TIMEOUT=10 "$psql" -X -A -t -w -d "$conninfo" -c ${shQuote(SOURCE_QUERY)} 2>&1`,
    'echo "--- source-exit=$?"',
  ].join('\n');
  return ['/bin/sh', '-c', script, 'pgplay-rewind-probe', o.bindir, o.pgdata, o.conninfo];
}

export interface RewindProbe {
  binary: boolean;
  runningPid?: number;
  control?: RewindControl;
  /** The source's answer; undefined when it could not be asked (sourceError says why). */
  source?: SourceAnswer;
  sourceError?: string;
}

export function parseRewindProbe(stdout: string): RewindProbe {
  const [head = '', rest = ''] = stdout.split('--- controldata\n');
  const [controldata = '', tail = ''] = rest.split('--- source\n');
  const exit = /--- source-exit=(\d+)/.exec(tail)?.[1];
  const sourceOut = tail.replace(/--- source-exit=\d+\s*$/, '').trim();
  const out: RewindProbe = { binary: /^pg_rewind=yes$/m.test(head) };
  const pid = /^running=(\d+)$/m.exec(head)?.[1];
  if (pid) out.runningPid = Number(pid);
  if (/^pg_control=yes$/m.test(head)) out.control = parseControldata(controldata);
  const answer = exit === '0' ? parseSourceAnswer(sourceOut) : undefined;
  if (answer) out.source = answer;
  else out.sourceError = sourceOut.split('\n').filter(Boolean).slice(-3).join(' ') || `psql exited ${exit ?? '?'}`;
  return out;
}

export function pgRewindArgv(bindir: string, pgdata: string, conninfo: string): string[] {
  return [`${bindir}/pg_rewind`, '--target-pgdata', pgdata, '--source-server', conninfo, '--progress'];
}
