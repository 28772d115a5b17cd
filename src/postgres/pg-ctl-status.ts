/**
 * `pg_ctl status -D PGDATA` without starting pg_ctl, where its answer is certain; every other case is
 * left to pg_ctl itself. Every facts read and probe asks it (8 times in a no-change standby run), and
 * pg_ctl is a process to start each time.
 *
 * What pg_ctl does (src/bin/pg_ctl/pg_ctl.c, 11..17): it refuses to run as root (exit 1); a directory
 * without a readable PG_VERSION may be a configuration-only directory (it then asks `postgres -C`) or no
 * cluster (exit 4); get_pgpid() reads postmaster.pid with fscanf("%ld"): no file is "no server running"
 * (exit 3), an unreadable, empty or malformed one exit 1, a negative pid a single-user backend; a
 * positive pid is alive when it is neither pg_ctl's own nor its parent's (the shell that ran it) and
 * kill(pid, 0) succeeds (exit 0, "(PID: n)"), else exit 3.
 *
 * The function answers only the cases whose answer follows from what it read: not root (real and
 * effective uid equal, as access() and kill() see them), and a directory that cannot be stat()ed (exit
 * 4 whatever the reason), or one with a readable PG_VERSION and either no postmaster.pid or a regular
 * readable one whose first line is a plain positive pid. The kill -0 is
 * the same call pg_ctl makes, as the same user; "its parent" is this shell ($$), which would have run
 * pg_ctl. A pid file naming a live process that is not a postmaster counts as running, as with pg_ctl.
 */
export const PG_CTL_STATUS_FUNCTION = `pgplay_ctl_status() {
  ctl_rc=; ctl_pid=; cs_ruid=; cs_euid=
  while read -r cs_key cs_r cs_e cs_rest; do
    case $cs_key in Uid:) cs_ruid=$cs_r; cs_euid=$cs_e; break ;; esac
  done 2>/dev/null < /proc/self/status
  case $cs_euid in ''|0|*[!0-9]*) return 0 ;; esac
  [ "$cs_ruid" = "$cs_euid" ] || return 0
  [ -e "$1" ] || { ctl_rc=4; return 0; }
  [ -r "$1/PG_VERSION" ] || return 0
  if [ ! -e "$1/postmaster.pid" ] && [ ! -L "$1/postmaster.pid" ]; then ctl_rc=3; return 0; fi
  [ -f "$1/postmaster.pid" ] && [ -r "$1/postmaster.pid" ] || return 0
  cs_pid=; IFS= read -r cs_pid < "$1/postmaster.pid"
  case $cs_pid in ''|0*|*[!0-9]*) return 0 ;; esac
  [ "\${#cs_pid}" -le 9 ] || return 0
  if [ "$cs_pid" != "$$" ] && kill -0 "$cs_pid" 2>/dev/null; then ctl_rc=0; ctl_pid=$cs_pid; else ctl_rc=3; fi
}`;
