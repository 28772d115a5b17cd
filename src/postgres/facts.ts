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
  ].join('\nunion all\n');
}

const SQL_PAUSED_PRE14 = factsSql('pg_is_wal_replay_paused()');
const SQL_PAUSED_14 = factsSql("pg_get_wal_replay_pause_state() = 'paused'");

/** Who and what the host is: read once per run (a step changes none of it). */
const HOST_SECTION = `echo "hostname=$(hostname 2>/dev/null || uname -n)"
echo "user=$(id -un 2>/dev/null)"
# The inventory's bindir is a claim too: its pg_ctl and the major of its postgres binary.
echo 'bindir.checked=1'
[ -x "$BINDIR/pg_ctl" ] && echo 'bindir.pg_ctl=1'
[ -x "$BINDIR/postgres" ] && echo "bindir.postgres=$("$BINDIR/postgres" --version 2>&1 | head -n 1)"
`;

/** The running server: its postmaster, pg_ctl status and its own view over SQL. */
const SERVER_SECTION = `RUNPORT=$PORT; RUNSOCK=$SOCKDIR; pid=
if [ -n "$PGDATA" ] && [ -r "$PGDATA/postmaster.pid" ]; then
  n=0
  while [ "$n" -lt 5 ] && IFS= read -r line; do
    n=$((n + 1))
    case $n in 1) pid=$line ;; 4) [ -n "$line" ] && RUNPORT=$line ;; 5) [ -n "$line" ] && RUNSOCK=$line ;; esac
  done < "$PGDATA/postmaster.pid"
  echo "postmaster_pid=$pid"
  if kill -0 "$pid" 2>/dev/null; then echo 'pid_alive=1'; else echo 'pid_alive=0'; fi
fi
running=0
if [ -n "$PGDATA" ] && [ -x "$BINDIR/pg_ctl" ]; then
  out=$("$BINDIR/pg_ctl" status -D "$PGDATA" 2>&1); rc=$?
  echo "pg_ctl_status=$rc"
  case $out in
    *'(PID: '*')'*) ctl_pid=\${out##*'(PID: '}; ctl_pid=\${ctl_pid%%')'*}
      case $ctl_pid in ''|*[!0-9]*) ;; *) echo "pg_ctl_pid=$ctl_pid" ;; esac ;;
  esac
  [ "$rc" = 0 ] && running=1
elif [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  running=1
fi
echo "running=$running"
if [ "$running" = 1 ]; then
  if [ -x "$BINDIR/psql" ]; then PSQL=$BINDIR/psql; else PSQL=$(command -v psql 2>/dev/null); fi
  if [ -z "$PSQL" ]; then echo 'psql_error=psql not found in the bindir nor on PATH'
  else
    major=; IFS= read -r major 2>/dev/null < "$PGDATA/PG_VERSION"
    if [ "\${major:-0}" -ge 14 ] 2>/dev/null; then SQL=${sq(SQL_PAUSED_14)}; else SQL=${sq(SQL_PAUSED_PRE14)}; fi
    out=$(PGCONNECT_TIMEOUT=10 "$PSQL" -X -A -t -q -w -v ON_ERROR_STOP=1 -h "$RUNSOCK" -p "$RUNPORT" -U "$DBUSER" -d postgres -c "$SQL" 2>&1); rc=$?
    if [ "$rc" = 0 ]; then
      dd=
      while IFS= read -r line; do
        case $line in
          sql.data_directory=*) dd=\${line#sql.data_directory=}; printf '%s\\n' "$line" ;;
          sql.*) printf '%s\\n' "$line" ;;
        esac
      done <<PGPLAY_SQL_OUT
$out
PGPLAY_SQL_OUT
      [ -n "$dd" ] && echo "data_directory_real=$(cd "$dd" 2>/dev/null && pwd -P)"
    else echo "psql_error=$(printf '%s' "$out" | head -n 3 | tr '\\n' ' ')"
    fi
  fi
fi
`;

/** Which parts the facts script reads besides the data directory (each default true). */
export interface FactsSections {
  /** Host name, OS user, the bindir's binaries: what a run never changes. */
  host?: boolean;
  /** The running server (postmaster, pg_ctl status, SQL). */
  server?: boolean;
}

/**
 * The script for a host. Run it as the PGDATA owner (`become`), e.g. transport.exec(['/bin/sh',
 * '-c', factsScript(host)], {become}). It prints `pgplay-facts 1` then `key=value` lines.
 */
export function factsScript(host: Host, sections: FactsSections = {}): string {
  const pg = host.postgres;
  const withHost = sections.host ?? true;
  const withServer = sections.server ?? true;
  return `
${CONTROL_FUNCTION}
PGDATA=${sq(host.pgdata ?? '')}
BINDIR=${sq(pg.bindir)}
PORT=${sq(pg.port)}
SOCKDIR=${sq(pg.socketDir)}
DBUSER=${sq(pg.superuser)}
LC_ALL=C; export LC_ALL
echo ${sq(FACTS_HEADER)}
${withHost ? HOST_SECTION : ''}if [ -z "$PGDATA" ]; then echo 'pgdata_dir=unset'
elif [ ! -e "$PGDATA" ]; then echo 'pgdata_dir=absent'
elif [ ! -d "$PGDATA" ]; then echo 'pgdata_dir=notdir'
elif [ ! -r "$PGDATA" ] || [ ! -x "$PGDATA" ]; then echo 'pgdata_dir=unreadable'
else echo 'pgdata_dir=present'; echo "pgdata_real=$(cd "$PGDATA" && pwd -P)"
fi
if [ -n "$PGDATA" ] && [ -r "$PGDATA/PG_VERSION" ]; then v=; IFS= read -r v < "$PGDATA/PG_VERSION"; echo "pg_version_file=$v"; fi
for f in standby.signal recovery.signal recovery.conf; do
  [ -n "$PGDATA" ] && [ -e "$PGDATA/$f" ] && echo "file.$f=1"
done
[ -n "$PGDATA" ] && pgplay_control "$PGDATA" "$BINDIR"
${withServer ? SERVER_SECTION : ''}echo 'end=1'
`;
}

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

/** What the inventory's bindir holds: pg_ctl, and the major of `postgres --version` ("postgres (PostgreSQL) 15.10 ..."). */
function bindirFacts(pgCtl: boolean, postgresVersion: string | undefined): NonNullable<HostFacts['bindir']> {
  const out: NonNullable<HostFacts['bindir']> = { pg_ctl: pgCtl };
  const m = postgresVersion ? /\(PostgreSQL\)\s+(\d+)/.exec(postgresVersion) : null;
  if (m) out.postgres_major = Number(m[1]);
  return out;
}

export function parseFacts(stdout: string): HostFacts {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.trim() === FACTS_HEADER);
  if (start < 0) {
    const shown = stdout.trim().split('\n').slice(0, 3).join(' | ');
    return unknownFacts(`the facts script printed no "${FACTS_HEADER}" header${shown ? `: ${shown}` : ''}`);
  }
  const kv = new Map<string, string>();
  const clients: ReplicationClient[] = [];
  for (const line of lines.slice(start + 1)) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'sql.client') {
      const c = parseClient(value);
      if (c) clients.push(c);
    } else if (!kv.has(key)) {
      kv.set(key, value);
    }
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
  if (kv.has('bindir.checked')) facts.bindir = bindirFacts(kv.get('bindir.pg_ctl') === '1', kv.get('bindir.postgres'));
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
