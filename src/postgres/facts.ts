/**
 * Facts about a host's PostgreSQL in one round trip: a POSIX sh script, run as the PGDATA owner,
 * that prints `key=value` lines, and the parser that turns them into HostFacts.
 *
 * The script never fails as a whole: a missing PGDATA, a stopped server or a failing psql each leave
 * their own trace in the output (absent keys, `psql_error=`), so the parser can say what is known.
 * Values come from the most direct source: the running server (SQL) first, then pg_control.
 */
import type { Host } from '../model/inventory.js';
import type { HostFacts, ReplicationClient } from '../model/facts.js';
import { unknownFacts } from '../model/facts.js';
import { shQuote } from '../transports/quote.js';
import { CONTROL_FUNCTION, parseControl } from './identity.js';
import { majorFromPgVersionFile, majorFromVersionNum } from './versions.js';
import { PATHS_SQL } from './server-paths.js';
import { PG_CTL_STATUS_FUNCTION } from './pg-ctl-status.js';

export const FACTS_HEADER = 'pgplay-facts 1';

/** Every value enters the script through the one shell-quoting function. */
function sq(value: string | number): string {
  return shQuote(String(value));
}

/**
 * One query, one row per fact. CASE guards every function that errors on the wrong side of
 * recovery (pg_current_wal_lsn on a standby, the replay functions on a primary). The replay-pause
 * expression is chosen by the shell from PG_VERSION, i.e. by the server actually running.
 */
function factsSql(replayPausedExpr: string): string {
  const current = 'case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end';
  return [
    `select 'sql.version_num=' || current_setting('server_version_num')`,
    // The build's PG_VERSION, as `postgres --version` and `pg_ctl --version` print it after "(PostgreSQL) ".
    `select 'sql.server_version=' || current_setting('server_version')`,
    `select 'sql.data_directory=' || current_setting('data_directory')`,
    `select 'sql.port=' || current_setting('port')`,
    `select 'sql.in_recovery=' || pg_is_in_recovery()::text`,
    `select 'sql.system_identifier=' || system_identifier::text from pg_control_system()`,
    // On a primary the current WAL file names the timeline at once, even right after a promotion,
    // before the next checkpoint updates pg_control; a standby reports its last restartpoint's.
    `select 'sql.timeline=' || case when pg_is_in_recovery() then (select timeline_id from pg_control_checkpoint())::text ` +
      `else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text end`,
    `select 'sql.current_lsn=' || case when pg_is_in_recovery() then '' else pg_current_wal_lsn()::text end`,
    `select 'sql.receive_lsn=' || case when pg_is_in_recovery() then coalesce(pg_last_wal_receive_lsn()::text, '') else '' end`,
    `select 'sql.replay_lsn=' || case when pg_is_in_recovery() then coalesce(pg_last_wal_replay_lsn()::text, '') else '' end`,
    `select 'sql.replay_paused=' || case when pg_is_in_recovery() then (${replayPausedExpr})::text else 'false' end`,
    `select 'sql.client=' || json_build_object('application_name', application_name, 'client_addr', host(client_addr), ` +
      `'state', state, 'sync_state', sync_state, 'replay_lsn', replay_lsn::text, ` +
      `'lag_bytes', pg_wal_lsn_diff(${current}, replay_lsn)::bigint)::text from pg_stat_replication`,
    ...CONTROL_SQL,
  ].join('\nunion all\n');
}

/**
 * What pg_controldata would print, from the running server (which is then not worth a process):
 * the system identifier and the latest checkpoint's timeline come from pg_control itself (these
 * functions read the file on disk, as pg_controldata does). The cluster state is not exposed over
 * SQL; a server that answers a query is either a primary, whose pg_control says "in production"
 * from the end of recovery on, or a hot standby, which accepts connections only in archive recovery
 * once consistent ("in archive recovery": crash recovery accepts none, and a standby that started
 * with crash recovery writes "in archive recovery" when it switches). The shutdown states are written
 * only after every backend has gone. Printed as `sqlcontrol.*`; the script turns them into the
 * `control.*` lines only when the server serves this PGDATA.
 */
const CONTROL_SQL = [
  `select 'sqlcontrol.system_identifier=' || system_identifier::text from pg_control_system()`,
  `select 'sqlcontrol.state=' || case when pg_is_in_recovery() then 'in archive recovery' else 'in production' end`,
  `select 'sqlcontrol.timeline=' || timeline_id::text from pg_control_checkpoint()`,
];

const SQL_PAUSED_PRE14 = factsSql('pg_is_wal_replay_paused()');
const SQL_PAUSED_14 = factsSql("pg_get_wal_replay_pause_state() = 'paused'");

/** Who the host is: read once per run (a step changes none of it). */
const HOST_SECTION = `h=; IFS= read -r h 2>/dev/null < /proc/sys/kernel/hostname
[ -n "$h" ] || h=$(hostname 2>/dev/null || uname -n)
echo "hostname=$h"
# The effective user without a process: its uid from /proc, its name from the first lines of /etc/passwd
# (the shell reads a byte per system call: a long file costs more than id); id where that finds nothing
# (another system, a user from a directory service, one listed further down).
pw_user=; pw_uid=; pw_n=0
while read -r pw_key pw_r pw_e pw_rest; do case $pw_key in Uid:) pw_uid=$pw_e; break ;; esac; done 2>/dev/null < /proc/self/status
if [ -n "$pw_uid" ]; then
  while [ "$pw_n" -lt 64 ] && IFS=: read -r pw_name pw_x pw_id pw_rest; do
    pw_n=$((pw_n + 1)); [ "$pw_id" = "$pw_uid" ] && { pw_user=$pw_name; break; }
  done 2>/dev/null < /etc/passwd
fi
[ -n "$pw_user" ] || pw_user=$(id -un 2>/dev/null)
echo "user=$pw_user"
`;

/**
 * The inventory's bindir is a claim too: its pg_ctl and (BINDIR_POSTGRES_SECTION) the major of its
 * binaries. Read only where the host has a data directory: that is where the claims are checked
 * (claims.ts), and a host without one (a backup repository) runs no server of the inventory's.
 */
const BINDIR_SECTION = `echo 'bindir.checked=1'
[ -x "$BINDIR/pg_ctl" ] && echo 'bindir.pg_ctl=1'
`;

/**
 * The PostgreSQL version of the bindir's server binaries (PG_VERSION, e.g. "15.10 (Debian 15.10-1)"),
 * after the server section; only where a postgres binary is there. When this PGDATA's postmaster (its
 * pid from postmaster.pid, and the server that answered serves this PGDATA) executes this very file
 * (same device and inode: a binary replaced on disk since it started is another inode), the version
 * the server reported is the file's: not worth a process. Else `pg_ctl --version`: the same package's
 * PG_VERSION, and pg_ctl starts no postgres of another version (it checks `postgres -V` first), so its
 * major is the one a start would run. `postgres --version` says the same but links the server's
 * libraries (ICU, LDAP, XML): ~29 ms against ~6 ms here, on every host whose server is not running.
 */
const BINDIR_POSTGRES_SECTION = `if [ -x "$BINDIR/postgres" ]; then
  if [ -n "$SQL_VERSION" ] && [ -n "$pid" ] && [ "/proc/$pid/exe" -ef "$BINDIR/postgres" ]; then
    echo "bindir.version=$SQL_VERSION"
  elif [ -x "$BINDIR/pg_ctl" ]; then
    v=$("$BINDIR/pg_ctl" --version 2>&1); v=\${v%%"$NL"*}
    case $v in *' (PostgreSQL) '*) echo "bindir.version=\${v#*' (PostgreSQL) '}" ;; esac
  fi
fi
`;

/** The postmaster (postmaster.pid) and pg_ctl status: `running=1` or `running=0`, and RUNSOCK/RUNPORT. */
const SERVER_STATUS = `RUNPORT=$PORT; RUNSOCK=$SOCKDIR; pid=; PM_STATUS=
if [ -n "$PGDATA" ] && [ -r "$PGDATA/postmaster.pid" ]; then
  n=0
  while [ "$n" -lt 8 ] && IFS= read -r line; do
    n=$((n + 1))
    case $n in 1) pid=$line ;; 4) [ -n "$line" ] && RUNPORT=$line ;; 5) [ -n "$line" ] && RUNSOCK=$line ;; 8) PM_STATUS=$line ;; esac
  done < "$PGDATA/postmaster.pid"
  echo "postmaster_pid=$pid"
  if kill -0 "$pid" 2>/dev/null; then echo 'pid_alive=1'; else echo 'pid_alive=0'; fi
fi
running=0
if [ -n "$PGDATA" ] && [ -x "$BINDIR/pg_ctl" ]; then
  # pg_ctl's own answer where it is certain without it (pg-ctl-status.ts), else pg_ctl.
  pgplay_ctl_status "$PGDATA"
  if [ -n "$ctl_rc" ]; then rc=$ctl_rc
  else
    out=$("$BINDIR/pg_ctl" status -D "$PGDATA" 2>&1); rc=$?
    case $out in
      *'(PID: '*')'*) ctl_pid=\${out##*'(PID: '}; ctl_pid=\${ctl_pid%%')'*} ;;
    esac
  fi
  echo "pg_ctl_status=$rc"
  case $ctl_pid in ''|*[!0-9]*) ;; *) echo "pg_ctl_pid=$ctl_pid" ;; esac
  [ "$rc" = 0 ] && running=1
elif [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  running=1
fi
echo "running=$running"
`;

/**
 * For a caller that asks the server itself over a connection it holds (facts-read.ts), what ties that
 * connection to this PGDATA's postmaster, read here instead of psql: whether the postmaster's socket is
 * the inventory's (`runsock_inventory=1`), whether the postmaster runs in this PGDATA (its working
 * directory, `postmaster_in_pgdata=1`), its state in postmaster.pid (`pm_status=`: ready, standby, or
 * stopping while a shutdown waits for the connections it still has) and the parent of the connection's
 * backend (`backend_parent=`, from /proc/<BACKEND_PID>/stat). pg_control is left to the caller's query.
 */
const CALLER_SQL_SECTION = `if [ "$running" = 1 ]; then
  [ "$RUNSOCK/.s.PGSQL.$RUNPORT" -ef "$SOCKDIR/.s.PGSQL.$PORT" ] && echo 'runsock_inventory=1'
  [ -n "$pid" ] && [ "/proc/$pid/cwd" -ef "$PGDATA" ] && echo 'postmaster_in_pgdata=1'
  echo "pm_status=$PM_STATUS"
  bp=
  case $BACKEND_PID in ''|*[!0-9]*) ;; *) IFS= read -r bp 2>/dev/null < "/proc/$BACKEND_PID/stat" ;; esac
  # "pid (comm) state ppid ...": the command name may hold spaces and parentheses; the last ") " ends it.
  if [ -n "$bp" ]; then bp=\${bp##*') '}; bp=\${bp#* }; echo "backend_parent=\${bp%% *}"; fi
  CONTROL_READ=1
fi
`;

/**
 * The running server: its postmaster, pg_ctl status and its own view over SQL. With `paths`, the
 * server-paths query (server-paths.ts) rides in the same session when the inventory's socket is this
 * server's (the same socket file), its rows kept in PP_ROWS for that section. With `sqlByCaller` the
 * script asks nothing over SQL (CALLER_SQL_SECTION); its caller asks next, or runs this script in full.
 */
function serverSection(paths: boolean, sqlByCaller: boolean): string {
  if (sqlByCaller) return SERVER_STATUS + CALLER_SQL_SECTION;
  const withPaths = paths
    ? `    if [ "$RUNSOCK/.s.PGSQL.$RUNPORT" -ef "$SOCKDIR/.s.PGSQL.$PORT" ]; then SQL="$SQL union all "${sq(PATHS_SQL)}; paths_asked=1; fi
`
    : '';
  return `${SERVER_STATUS}if [ "$running" = 1 ]; then
  if [ -x "$BINDIR/psql" ]; then PSQL=$BINDIR/psql; else PSQL=$(command -v psql 2>/dev/null); fi
  if [ -z "$PSQL" ]; then echo 'psql_error=psql not found in the bindir nor on PATH'
  else
    major=; IFS= read -r major 2>/dev/null < "$PGDATA/PG_VERSION"
    if [ "\${major:-0}" -ge 14 ] 2>/dev/null; then SQL=${sq(SQL_PAUSED_14)}; else SQL=${sq(SQL_PAUSED_PRE14)}; fi
${withPaths}    out=$(PGCONNECT_TIMEOUT=10 "$PSQL" -X -A -t -q -w -v ON_ERROR_STOP=1 -h "$RUNSOCK" -p "$RUNPORT" -U "$DBUSER" -d postgres -c "$SQL" 2>&1); rc=$?
    if [ "$rc" = 0 ]; then
      dd=; sql_control=; sql_version=
      while IFS= read -r line; do
        case $line in
          sql.data_directory=*) dd=\${line#sql.data_directory=}; printf '%s\\n' "$line" ;;
          sql.server_version=*) sql_version=\${line#sql.server_version=} ;;
          sql.*) printf '%s\\n' "$line" ;;
          sqlcontrol.*) sql_control="$sql_control\${line#sql}$NL" ;;
          paths.*) PP_ROWS="$PP_ROWS$line$NL" ;;
        esac
      done <<PGPLAY_SQL_OUT
$out
PGPLAY_SQL_OUT
      if [ -n "$dd" ]; then real_dir "$dd"; echo "data_directory_real=$REAL"
        # pg_control over SQL stands for pg_controldata only when this server serves this PGDATA.
        if [ -n "$sql_control" ] && [ -n "$REAL" ] && [ "$REAL" = "$PGDATA_REAL" ]; then printf '%s' "$sql_control"; CONTROL_READ=1; SQL_VERSION=$sql_version; fi
      fi
      [ "$paths_asked" = 1 ] && PP_READ=1
    else
      # The first three lines of the error, on one line.
      err=; n=0
      while [ "$n" -lt 3 ] && IFS= read -r line; do n=$((n + 1)); err="$err$line "; done <<PGPLAY_SQL_ERR
$out
PGPLAY_SQL_ERR
      echo "psql_error=$err"
    fi
  fi
fi
`;
}

/**
 * The caller's answers (FactsSections.answered), used only where the postmaster runs: its version for the
 * bindir's section, and the paths rows for the server-paths section (which reads PP_ROWS when PP_READ).
 */
function answeredSection(answered: NonNullable<FactsSections['answered']>): string {
  return `if [ "$running" = 1 ]; then SQL_VERSION=${sq(answered.serverVersion)}; PP_ROWS=${sq(answered.pathRows.join('\n'))}; PP_READ=1; fi
`;
}

/** Which parts the facts script reads besides the data directory (each default true). */
export interface FactsSections {
  /** Host name, OS user, the bindir's binaries: what a run never changes. */
  host?: boolean;
  /** The running server (postmaster, pg_ctl status, SQL). */
  server?: boolean;
  /**
   * Ask the server-paths query in the facts' own psql session (default false): for a script that
   * serverPathsScript's section follows, which then reads the rows instead of starting a psql.
   */
  paths?: boolean;
  /**
   * The server's SQL view is not asked by the script (default false): its caller asks it over a
   * connection it already holds (facts-read.ts), after the script. Not with `paths`.
   */
  sqlByCaller?: boolean;
  /** With sqlByCaller: the pid of the caller's connection's backend, whose parent the script reads. */
  backendPid?: number;
  /**
   * With sqlByCaller, what the caller's connection already answered before the script: the server's
   * version (server_version: the bindir's version when the postmaster runs the bindir's own postgres
   * binary, instead of pg_ctl --version) and the server-paths query's rows, which serverPathsScript's
   * section then reads instead of starting a psql. The caller believes the output only once it has
   * tied that connection to this PGDATA's postmaster (postgres/facts-read.ts), else reads in full.
   */
  answered?: { serverVersion: string; pathRows: readonly string[] };
}

/**
 * The script for a host. Run it as the PGDATA owner (`become`), e.g. transport.exec(['/bin/sh',
 * '-c', factsScript(host)], {become}). It prints `pgplay-facts 1` then `key=value` lines.
 */
export function factsScript(host: Host, sections: FactsSections = {}): string {
  const pg = host.postgres;
  const withHost = sections.host ?? true;
  const withServer = sections.server ?? true;
  const withBindir = withHost && host.pgdata !== undefined;
  return `
${CONTROL_FUNCTION}
${PG_CTL_STATUS_FUNCTION}
PGDATA=${sq(host.pgdata ?? '')}
BINDIR=${sq(pg.bindir)}
PORT=${sq(pg.port)}
SOCKDIR=${sq(pg.socketDir)}
DBUSER=${sq(pg.superuser)}
BACKEND_PID=${sq(sections.backendPid ?? '')}
LC_ALL=C; export LC_ALL
NL='
'
# A directory with every symbolic link resolved, in REAL (empty when it cannot be entered): cd -P in
# this shell instead of a $(cd && pwd -P) subshell; it leaves the shell in /, which nothing here minds.
real_dir() { REAL=; cd -P -- "$1" 2>/dev/null && REAL=$PWD; cd / 2>/dev/null; }
echo ${sq(FACTS_HEADER)}
${withHost ? HOST_SECTION : ''}${withBindir ? BINDIR_SECTION : ''}PGDATA_REAL=
if [ -z "$PGDATA" ]; then echo 'pgdata_dir=unset'
elif [ ! -e "$PGDATA" ]; then echo 'pgdata_dir=absent'
elif [ ! -d "$PGDATA" ]; then echo 'pgdata_dir=notdir'
elif [ ! -r "$PGDATA" ] || [ ! -x "$PGDATA" ]; then echo 'pgdata_dir=unreadable'
else echo 'pgdata_dir=present'; real_dir "$PGDATA"; PGDATA_REAL=$REAL; echo "pgdata_real=$PGDATA_REAL"
fi
if [ -n "$PGDATA" ] && [ -r "$PGDATA/PG_VERSION" ]; then v=; IFS= read -r v < "$PGDATA/PG_VERSION"; echo "pg_version_file=$v"; fi
for f in standby.signal recovery.signal recovery.conf; do
  [ -n "$PGDATA" ] && [ -e "$PGDATA/$f" ] && echo "file.$f=1"
done
CONTROL_READ=; SQL_VERSION=; PP_READ=; PP_ROWS=; paths_asked=
${withServer ? serverSection(sections.paths ?? false, sections.sqlByCaller ?? false) : ''}${sections.sqlByCaller && sections.answered ? answeredSection(sections.answered) : ''}# pg_controldata only when the server did not tell (stopped, not answering, or another PGDATA's).
[ -n "$PGDATA" ] && [ "$CONTROL_READ" != 1 ] && pgplay_control "$PGDATA" "$BINDIR"
${withBindir ? BINDIR_POSTGRES_SECTION : ''}echo 'end=1'
`;
}

/** The facts query the script asks a server whose PG_VERSION file names `major` (the replay-pause expression differs before 14). */
export function factsQuery(major: number | undefined): string {
  return (major ?? 0) >= 14 ? SQL_PAUSED_14 : SQL_PAUSED_PRE14;
}

/**
 * What the script's psql section prints after its query answered, from the query's rows (factsQuery)
 * asked by the caller instead: the sql.* lines, the served directory's real path and pg_control's
 * fields. Undefined unless the server says it serves this PGDATA by the very path the inventory names
 * or the script resolved (`pgdataReal`): the script resolves any other spelling (symbolic links) on the
 * host, so the caller then reads everything by the script.
 */
export function serverQueryLines(rows: readonly string[], pgdata: string, pgdataReal: string): string[] | undefined {
  const lines: string[] = [];
  const control: string[] = [];
  let served: string | undefined;
  for (const row of rows) {
    if (row.startsWith('sql.data_directory=')) served = row.slice('sql.data_directory='.length);
    if (row.startsWith('sql.server_version=')) continue;
    if (row.startsWith('sql.')) lines.push(row);
    else if (row.startsWith('sqlcontrol.')) control.push(row.slice('sql'.length));
  }
  if (!pgdataReal || (served !== pgdata && served !== pgdataReal)) return undefined;
  // The script read no pg_control (CONTROL_READ): without all of it from the server, it must.
  if (!lines.some((l) => l.startsWith('sql.version_num=')) || CONTROL_KEYS.some((k) => !control.some((l) => l.startsWith(`${k}=`)))) return undefined;
  return [...lines, `data_directory_real=${pgdataReal}`, ...control];
}

/** The keys of the lines CONTROL_SQL's rows become (`sqlcontrol.state=` is printed as `control.state=`). */
const CONTROL_KEYS = CONTROL_SQL.map((sql) => /'sql(control\.[a-z_]+)='/.exec(sql)![1]!);

/** argv that runs the facts script; pass `become: host.postgres.osUser` (or the connection's become). */
export function factsArgv(host: Host, sections: FactsSections = {}): string[] {
  return ['/bin/sh', '-c', factsScript(host, sections)];
}

function num(v: string | undefined): number | undefined {
  if (v === undefined || v.trim() === '' || !/^-?\d+$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

function parseClient(json: string): ReplicationClient | undefined {
  try {
    const o = JSON.parse(json) as Record<string, unknown>;
    const lag = o.lag_bytes;
    return {
      application_name: String(o.application_name ?? ''),
      client_addr: typeof o.client_addr === 'string' ? o.client_addr : null,
      state: String(o.state ?? ''),
      sync_state: String(o.sync_state ?? ''),
      replay_lsn: typeof o.replay_lsn === 'string' ? o.replay_lsn : null,
      lag_bytes: typeof lag === 'number' ? lag : typeof lag === 'string' && /^-?\d+$/.test(lag) ? Number(lag) : null,
    };
  } catch {
    return undefined;
  }
}

/** What the inventory's bindir holds: pg_ctl, and the major of its binaries' PG_VERSION ("15.10 (Debian ...)"). */
function bindirFacts(pgCtl: boolean, version: string | undefined): NonNullable<HostFacts['bindir']> {
  const out: NonNullable<HostFacts['bindir']> = { pg_ctl: pgCtl };
  const m = version ? /^(\d+)/.exec(version.trim()) : null;
  if (m) out.postgres_major = Number(m[1]);
  return out;
}

/** A replication client's line: the one key printed once per row (pg_stat_replication). */
const CLIENT_PREFIX = 'sql.client=';

/**
 * The script's `key=value` lines as a map, each key's first value: the first source printed wins (the
 * server's own answer before pg_control's, for instance). Lines without a key are skipped.
 */
export function firstValues(lines: readonly string[]): Map<string, string> {
  const kv = new Map<string, string>();
  for (const line of lines) {
    const eq = line.indexOf('=');
    if (eq > 0 && !kv.has(line.slice(0, eq))) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return kv;
}

export function parseFacts(stdout: string): HostFacts {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.trim() === FACTS_HEADER);
  if (start < 0) {
    const shown = stdout.trim().split('\n').slice(0, 3).join(' | ');
    return unknownFacts(`the facts script printed no "${FACTS_HEADER}" header${shown ? `: ${shown}` : ''}`);
  }
  const body = lines.slice(start + 1);
  const kv = firstValues(body);
  const clients: ReplicationClient[] = [];
  for (const line of body) {
    if (!line.startsWith(CLIENT_PREFIX)) continue;
    const c = parseClient(line.slice(CLIENT_PREFIX.length));
    if (c) clients.push(c);
  }

  const errors: string[] = [];
  const pgdataDir = kv.get('pgdata_dir');
  if (pgdataDir === 'unreadable') errors.push('PGDATA is not readable by the user the facts ran as');
  if (pgdataDir === 'notdir') errors.push('PGDATA exists but is not a directory');
  if (!kv.has('end')) errors.push('the facts output is truncated');

  const pgdataVersion = kv.has('pg_version_file') ? majorFromPgVersionFile(kv.get('pg_version_file')!) : undefined;
  const pgCtlStatus = num(kv.get('pg_ctl_status'));
  const running = pgCtlStatus !== undefined ? pgCtlStatus === 0 : kv.get('running') === '1';

  const facts: HostFacts = {
    reachable: true,
    hostname: kv.get('hostname') || undefined,
    user: kv.get('user') || undefined,
    pgdata_present: pgdataVersion !== undefined,
    running,
  };
  // Only output that reports on the bindir says what it holds (absent lines are no evidence otherwise).
  if (kv.has('bindir.checked')) facts.bindir = bindirFacts(kv.get('bindir.pg_ctl') === '1', kv.get('bindir.version'));
  if (pgdataVersion !== undefined) facts.pgdata_version = pgdataVersion;
  if (running) facts.pid = num(kv.get('pg_ctl_pid')) ?? num(kv.get('postmaster_pid'));

  const control = parseControl((k) => kv.get(k));
  if (control.state) facts.cluster_state = control.state;

  const versionNum = num(kv.get('sql.version_num'));
  const sqlOk = versionNum !== undefined;
  if (sqlOk) {
    facts.server_version_num = versionNum;
    facts.version = majorFromVersionNum(versionNum);
    facts.in_recovery = kv.get('sql.in_recovery') === 'true';
    const lsn = (k: string) => kv.get(k) || undefined;
    facts.current_lsn = lsn('sql.current_lsn');
    facts.receive_lsn = lsn('sql.receive_lsn');
    facts.replay_lsn = lsn('sql.replay_lsn');
    if (facts.in_recovery) facts.replay_paused = kv.get('sql.replay_paused') === 'true';
    facts.replication_clients = clients;
    for (const k of ['current_lsn', 'receive_lsn', 'replay_lsn'] as const) if (facts[k] === undefined) delete facts[k];
  } else if (pgdataVersion !== undefined) {
    facts.version = pgdataVersion;
  }
  const timeline = num(kv.get('sql.timeline')) ?? control.timeline;
  if (timeline !== undefined && timeline > 0) facts.timeline = timeline;
  const sysid = kv.get('sql.system_identifier') || control.systemIdentifier;
  if (sysid && /^\d+$/.test(sysid) && sysid !== '0') facts.system_identifier = sysid;

  const real = kv.get('pgdata_real');
  const served = kv.get('data_directory_real');
  if (sqlOk && real && served && real !== served) {
    errors.push(`the server that answered on port ${kv.get('sql.port') ?? '?'} serves ${served}, not this PGDATA (${real})`);
  }
  if (kv.has('psql_error')) errors.push(`psql: ${kv.get('psql_error')!.trim()}`);
  else if (running && !sqlOk) errors.push('the server is running but the facts query returned nothing');
  if (errors.length) facts.error = errors.join('; ');
  return facts;
}
