/**
 * What a data directory is, read on its host before anything destroys it: which directory it really is
 * (every symbolic link resolved, and a key that is equal only for the same directory on the same
 * machine), whether it holds a cluster and which one (pg_control's system identifier and state, read
 * with pg_controldata, which works while the server is down), and whether a postmaster runs on it.
 *
 * The directory key is the kernel's boot id with the directory's device and inode: two paths with the
 * same key are one directory (a symbolic link, a bind mount), on one machine. Hosts that only share a
 * kernel but not a filesystem (containers, mount namespaces) see different inodes; two machines have
 * different boot ids even when cloned from one image.
 *
 * Pure knowledge: the script and its parser (the inventory's comparisons of paths and machines are in
 * same-directory.ts). The actions run it through their host's transport as the PGDATA owner
 * (src/actions/identity-guard.ts).
 */
import { shQuote } from '../transports/quote.js';
import { majorFromPgVersionFile } from './versions.js';

export const IDENTITY_HEADER = 'pgplay-identity 1';

/** pg_control's DBState enum, for the raw read (identical in 11..17). */
const DB_STATES = [
  'starting up',
  'shut down',
  'shut down in recovery',
  'shutting down',
  'in crash recovery',
  'in archive recovery',
  'in production',
];

/**
 * A shell function, `pgplay_control PGDATA BINDIR [PREFIX]`, that prints what pg_control says as
 * `control.system_identifier=`, `control.state=` (or `control.state_code=`) and `control.timeline=`
 * lines, each after PREFIX (the identity read's `3.`: no pipe through a loop to add it), and nothing
 * when there is no readable pg_control. pg_controldata first; when it is missing or
 * from another major, the few fields whose offsets are the same in every pg_control from 11 to 17.
 * Shell builtins only beside pg_controldata itself: every identity read runs it, and so does every facts
 * probe of a server that does not answer; a grep and a sed per call were two more processes each time
 * (case and a read loop do their work), and a pipe into the loop two forks (a here-document is none).
 */
export const CONTROL_FUNCTION = `pgplay_control() {
  [ -r "$1/global/pg_control" ] || return 0
  cd_out=
  [ -x "$2/pg_controldata" ] && cd_out=$(LC_ALL=C "$2/pg_controldata" -D "$1" 2>&1)
  case $cd_out in
    ''|*WARNING*|*'could not'*) cd_out= ;;
  esac
  if [ -n "$cd_out" ]; then
    while IFS= read -r cd_line; do
      case $cd_line in
        'Database cluster state:'*) cd_key=control.state ;;
        "Latest checkpoint's TimeLineID:"*) cd_key=control.timeline ;;
        'Database system identifier:'*) cd_key=control.system_identifier ;;
        *) continue ;;
      esac
      cd_value=\${cd_line#*:}
      while :; do case $cd_value in ' '*) cd_value=\${cd_value# } ;; *) break ;; esac; done
      printf '%s%s=%s\\n' "\${3-}" "$cd_key" "$cd_value"
    done <<PGPLAY_CONTROLDATA
$cd_out
PGPLAY_CONTROLDATA
  elif command -v od >/dev/null 2>&1; then
    echo "\${3-}control.system_identifier=$(od -A n -t u8 -j 0 -N 8 "$1/global/pg_control" | tr -d ' ')"
    echo "\${3-}control.state_code=$(od -A n -t u4 -j 16 -N 4 "$1/global/pg_control" | tr -d ' ')"
    echo "\${3-}control.timeline=$(od -A n -t u4 -j 48 -N 4 "$1/global/pg_control" | tr -d ' ')"
  fi
}`;

export interface ControlData {
  systemIdentifier?: string;
  state?: string;
  timeline?: number;
}

/** The `control.*` values printed by pgplay_control, looked up by key. */
export function parseControl(get: (key: string) => string | undefined): ControlData {
  const out: ControlData = {};
  const code = get('control.state_code');
  const state = get('control.state') ?? (code !== undefined && /^\d+$/.test(code.trim()) ? DB_STATES[Number(code)] : undefined);
  if (state) out.state = state;
  const sysid = get('control.system_identifier')?.trim();
  if (sysid && /^\d+$/.test(sysid) && sysid !== '0') out.systemIdentifier = sysid;
  const tl = get('control.timeline')?.trim();
  if (tl && /^\d+$/.test(tl) && Number(tl) > 0) out.timeline = Number(tl);
  return out;
}

/** What one path on one host is. */
export interface DirectoryIdentity {
  path: string;
  /** The path could be examined (false: `error` says why). */
  known: boolean;
  error?: string;
  exists: boolean;
  directory: boolean;
  /** The path with every symbolic link resolved. */
  real?: string;
  /** boot id, device and inode: equal only for the same directory on the same machine. */
  key?: string;
  // What follows is read only for a path read whole (identityArgv's `whole`).
  /** PG_VERSION's major, when the directory holds one. */
  pgVersion?: number;
  /** global/pg_control is there: the cluster could be started. */
  control: boolean;
  systemIdentifier?: string;
  clusterState?: string;
  /** A live process holds the pid in postmaster.pid. */
  running: boolean;
  pid?: number;
}

/**
 * The script: `sh -c SCRIPT pgplay-identity BINDIR N PATH...` prints the header, then for the i-th path
 * `i.key=value` lines, then `end=1`. It never fails as a whole: what cannot be read is reported.
 * Only the first N paths are read whole; of the others only which directory each is (exists, key,
 * real path): the guard compares other hosts' directories by key, and pg_controldata for each of them
 * cost its critical path ~15 ms per directory. A pid in postmaster.pid counts as running when kill -0
 * reaches it or /proc has it (another user's process): a pid reused by something else errs on the safe
 * side. Shell builtins where they do (read, cd -P, case, test): it runs before every destructive step,
 * often for three directories, and each process (a subshell ~1.5 ms, a program ~3 ms here) was on the
 * guard's critical path:
 * - one `stat` for every path that exists (none when none does), each of its lines taken only when it
 *   names exactly its path (a path that appeared or vanished meanwhile puts the rest back on a stat of
 *   their own); the lines are taken from a variable, not a here-document on a descriptor, which some
 *   shells write to a temporary file that a full disk would refuse;
 * - a path the shell's test does not find gets a stat of its own, whose error says why (not there, or a
 *   mount whose filesystem fails: ENOTCONN, ESTALE, EIO are errors, never "missing");
 * - the real path from `cd -P` in this shell ($PWD), not from a subshell.
 */
export const IDENTITY_SCRIPT = `${CONTROL_FUNCTION}
bindir=$1; whole=$2; shift 2
boot=; IFS= read -r boot 2>/dev/null < /proc/sys/kernel/random/boot_id; [ -n "$boot" ] || boot=$(hostname)
echo ${shQuote(IDENTITY_HEADER)}
NL='
'
stats=
for d in "$@"; do [ -e "$d" ] && { stats=$(LC_ALL=C stat -L -c '%n|%F|%d:%i' -- "$@" 2>/dev/null)$NL; break; }; done
i=0
for d in "$@"; do
  i=$((i + 1))
  rc=1
  if [ -n "$stats" ] && [ -e "$d" ]; then
    # "NAME|TYPE|DEV:INO": neither TYPE nor DEV:INO holds a |, so NAME is all before the last two.
    line=\${stats%%"$NL"*}; stats=\${stats#*"$NL"}
    if [ "\${line%|*|*}" = "$d" ]; then st=\${line#"$d|"}; rc=0; else stats=; fi
  fi
  if [ "$rc" != 0 ]; then st=$(LC_ALL=C stat -L -c '%F|%d:%i' -- "$d" 2>&1); rc=$?; fi
  if [ "$rc" != 0 ]; then
    case $st in
      *'No such file'*|*'Not a directory'*) echo "$i.exists=0" ;;
      *) printf '%s\\n' "$i.error=\${st%%"$NL"*}" ;;
    esac
    continue
  fi
  echo "$i.exists=1"
  case $st in directory\\|*) ;; *) echo "$i.type=\${st%%|*}"; continue ;; esac
  echo "$i.directory=1"
  echo "$i.key=$boot:\${st#*|}"
  if cd -P -- "$d" 2>/dev/null; then real=$PWD; cd /; else real=$(readlink -f -- "$d"); fi
  printf '%s\\n' "$i.real=$real"
  [ "$i" -gt "$whole" ] && continue
  if [ -r "$d/PG_VERSION" ]; then v=; IFS= read -r v < "$d/PG_VERSION"; echo "$i.pg_version=$v"; fi
  [ -e "$d/global/pg_control" ] && echo "$i.control=1"
  if [ -r "$d/postmaster.pid" ]; then
    pid=; IFS= read -r pid 2>/dev/null < "$d/postmaster.pid"
    case "$pid" in
      ''|*[!0-9]*) ;;
      *) echo "$i.pid=$pid"; if kill -0 "$pid" 2>/dev/null || [ -d "/proc/$pid" ]; then echo "$i.running=1"; fi ;;
    esac
  fi
  pgplay_control "$d" "$bindir" "$i."
done
echo end=1`;

/** `whole`: how many of the paths, from the first, are read whole (the rest: which directory each is). */
export function identityArgv(bindir: string, paths: string[], whole = paths.length): string[] {
  return ['/bin/sh', '-c', IDENTITY_SCRIPT, 'pgplay-identity', bindir, String(whole), ...paths];
}

export function parseIdentities(stdout: string, paths: string[]): DirectoryIdentity[] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.trim() === IDENTITY_HEADER);
  const complete = start >= 0 && lines.slice(start).some((l) => l.trim() === 'end=1');
  const kv = new Map<string, string>();
  for (const line of start >= 0 ? lines.slice(start + 1) : []) {
    const eq = line.indexOf('=');
    if (eq > 0 && !kv.has(line.slice(0, eq))) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return paths.map((path, n) => {
    const get = (k: string) => kv.get(`${n + 1}.${k}`);
    const id: DirectoryIdentity = { path, known: false, exists: false, directory: false, control: false, running: false };
    if (!complete) return { ...id, error: `the identity script printed no complete answer${stdout.trim() ? `: ${stdout.trim().split('\n')[0]}` : ''}` };
    if (get('error') !== undefined) return { ...id, error: get('error') };
    if (get('exists') === undefined) return { ...id, error: 'the identity script said nothing about it' };
    id.known = true;
    id.exists = get('exists') === '1';
    id.directory = get('directory') === '1';
    if (!id.directory) return id;
    id.key = get('key');
    id.real = get('real') || undefined;
    const version = get('pg_version');
    if (version !== undefined) id.pgVersion = majorFromPgVersionFile(version);
    id.control = get('control') === '1';
    const control = parseControl(get);
    if (control.systemIdentifier) id.systemIdentifier = control.systemIdentifier;
    if (control.state) id.clusterState = control.state;
    const pid = get('pid');
    if (pid && /^\d+$/.test(pid)) id.pid = Number(pid);
    id.running = get('running') === '1';
    return id;
  });
}

/** "the cluster 7312... (PostgreSQL 15, shut down)", or what else the directory holds. */
export function describeContents(id: DirectoryIdentity): string {
  if (!id.exists) return 'nothing (it does not exist)';
  if (!id.directory) return 'no directory';
  if (id.systemIdentifier) {
    const details = [id.pgVersion !== undefined ? `PostgreSQL ${id.pgVersion}` : undefined, id.clusterState, id.running ? `running, pid ${id.pid}` : undefined];
    return `a cluster with system identifier ${id.systemIdentifier} (${details.filter(Boolean).join(', ')})`;
  }
  if (id.pgVersion !== undefined) return `a PostgreSQL ${id.pgVersion} directory without a readable pg_control`;
  return 'no cluster';
}
