#!/usr/bin/env bash
# The raw side of the procedure benchmark (bench/procedures/README.md): for each shipped procedure, the
# command sequence an operator would run by hand to do THE SAME WORK on the lab, with the same tools,
# the same restore types, the same configuration files and the same waits. pgplay's procedures are timed
# against these, interleaved. Keep this file readable: a reviewer compares it with the playbooks.
#
#   bash bench/procedures/raw.sh <procedure>
#   procedures: nightly-backup standby-first-build standby-rebuild pitr-drill standby-no-change
#   environment: LAB (the lab directory), PORT_DB1, PORT_DB2, PORT_DRILL, BINDIR (PostgreSQL's bin),
#                RESTORE_POINT (pitr-drill), DRILL_EXPECT (pitr-drill: pgbench_accounts rows)
#
# Every command runs as the PostgreSQL OS user through runuser, as pgplay's local transport does with
# `connection.become: postgres`. Waits poll every 0.1 s, with a psql each (pgplay's streaming wait and
# its drill's readiness wait poll a query on an open connection 20 ms after the first miss, doubling up
# to 0.1 s).
set -euo pipefail

: "${LAB:?LAB (the lab directory) is required}"
: "${PORT_DB1:?}" "${PORT_DB2:?}" "${PORT_DRILL:?}"
BIN=${BINDIR:-/usr/lib/postgresql/15/bin}
STANZA=lab
WAIT_SECONDS=300

as_pg() { runuser -u postgres -- "$@"; }
# psql on a lab host (db1, db2, drill1) through its socket directory.
sql() {
  local host=$1 port=$2 db=$3; shift 3
  as_pg "$BIN/psql" -X -A -t -q -w -v ON_ERROR_STOP=1 -h "$LAB/$host/run" -p "$port" -d "$db" "$@"
}
# pgBackRest with a host's own configuration file (the lab keeps one per host).
backrest() {
  local host=$1; shift
  as_pg pgbackrest --config="$LAB/$host/pgbackrest.conf" --stanza="$STANZA" --log-level-console=off --log-level-stderr=warn "$@"
}
# Poll a query until it returns t; fail after WAIT_SECONDS.
wait_for() {
  local host=$1 port=$2 query=$3 deadline=$(( $(date +%s) + WAIT_SECONDS ))
  until [ "$(sql "$host" "$port" postgres -c "$query" 2>/dev/null || true)" = t ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "raw: timed out waiting on $host for: $query" >&2; exit 1; fi
    sleep 0.1
  done
}
# A file written as the PostgreSQL OS user, mode 0600, from stdin.
put() { as_pg sh -c 'umask 077 && cat > "$1"' put "$1"; }

# ---- standby pieces (standby-from-backup.yml, include/standby-build.yml) ---------------------------------
STANDBY=$LAB/db2/data
standby_config() {
  # conf.d/pgplay.conf: the same settings pgplay renders for db2 (postgresql.conf.hbs); the restored
  # postgresql.conf (the primary's) already has include_dir = 'conf.d', the restored pg_hba.conf
  # already has the replication rules (pgplay rewrites its block with the same rules).
  as_pg mkdir -p -m 0700 "$STANDBY/conf.d"
  put "$STANDBY/conf.d/pgplay.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT_DB2
unix_socket_directories = '$LAB/db2/run'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
max_slot_wal_keep_size = '10GB'
hot_standby = on
wal_log_hints = on
archive_mode = on
shared_buffers = '32MB'
max_connections = 40
wal_keep_size = '128MB'
archive_command = 'pgbackrest --config=$LAB/db2/pgbackrest.conf --stanza=$STANZA archive-push %p'
EOF
  # Recovery settings (pgBackRest's restore wrote standby.signal and restore_command already).
  put "$STANDBY/conf.d/pgplay-recovery.conf" <<EOF
primary_conninfo = 'host=127.0.0.1 port=$PORT_DB1 user=replicator application_name=db2 passfile=$LAB/db2/pgpass'
primary_slot_name = 'pgplay_db2'
restore_command = 'pgbackrest --config=$LAB/db2/pgbackrest.conf --stanza=$STANZA archive-get %f "%p"'
EOF
}
standby_restore_start_wait() {
  as_pg mkdir -p -m 0700 "$STANDBY"
  backrest db2 --pg1-path="$STANDBY" --type=standby --delta restore
  standby_config
  # Its slot on the upstream, created only when missing.
  sql db1 "$PORT_DB1" postgres -c "SELECT pg_create_physical_replication_slot('pgplay_db2', true)
    WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'pgplay_db2')" >/dev/null
  as_pg mkdir -p "$STANDBY/log"
  as_pg "$BIN/pg_ctl" start -D "$STANDBY" -l "$STANDBY/log/startup.log" -w -t "$WAIT_SECONDS" >/dev/null
  wait_for db1 "$PORT_DB1" "SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = 'db2' AND state = 'streaming')"
}

case "${1:-}" in
  # nightly-backup.yml -p type=full: check, full backup, expire, verify, globals (keep 14): the five
  # commands of a nightly cron script. (The stanza exists since the first night: pgplay reads
  # `pgbackrest info` to know it and would create it then; a cron script does not run stanza-create.)
  nightly-backup)
    backrest bk1 check
    backrest bk1 --type=full backup
    backrest bk1 expire
    backrest bk1 verify
    as_pg sh -c 'umask 077 && out=$1/globals-$(date -u +%Y%m%dT%H%M%SZ).sql &&
      "$2/pg_dumpall" --globals-only -h "$3" -p "$4" -U postgres -f "$out.partial" && mv "$out.partial" "$out" &&
      cd "$1" && ls -1 globals-*Z.sql | sort | head -n -14 | xargs -r rm -f --' \
      globals "$LAB/bk1/globals" "$BIN" "$LAB/db1/run" "$PORT_DB1"
    ;;

  # standby-from-backup.yml -p host=db2 on a host without PGDATA, until the primary sees it streaming.
  standby-first-build)
    standby_restore_start_wait
    ;;

  # standby-from-backup.yml -p host=db2 -p rebuild=true (delta restore), until streaming again.
  standby-rebuild)
    as_pg "$BIN/pg_ctl" stop -D "$STANDBY" -m fast -w >/dev/null
    standby_restore_start_wait
    ;;

  # standby-from-backup.yml -p host=db2 on a standby that streams already: nothing to do, one query says so.
  standby-no-change)
    [ "$(sql db2 "$PORT_DB2" postgres -c "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')")" = t ]
    ;;

  # pitr-drill.yml -p target=name -p target_value=$RESTORE_POINT with one check (the row count), whole:
  # archive the current WAL, restore into the scratch PGDATA with archiving off, start, wait until
  # promoted, the proof in the server log, the check query, stop and remove the copy.
  pitr-drill)
    : "${RESTORE_POINT:?}" "${DRILL_EXPECT:?}"
    COPY=$LAB/drill1/data
    backrest bk1 check
    as_pg mkdir -p -m 0700 "$COPY"
    backrest drill1 --pg1-path="$COPY" --type=name --target="$RESTORE_POINT" --target-action=promote \
      --archive-mode=off --delta restore
    as_pg mkdir -p -m 0700 "$COPY/conf.d" "$COPY/log"
    rm -f "$COPY/conf.d/pgplay-recovery.conf"
    put "$COPY/conf.d/pgplay.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT_DRILL
unix_socket_directories = '$LAB/drill1/run'
archive_mode = off
EOF
    put "$COPY/conf.d/pgplay.drill.conf" <<EOF
archive_mode = off
logging_collector = off
log_min_messages = info
cluster_name = 'pgplay-drill'
EOF
    as_pg "$BIN/pg_ctl" start -D "$COPY" -l "$COPY/log/pgplay-drill.log" -w -t "$WAIT_SECONDS" >/dev/null
    wait_for drill1 "$PORT_DRILL" "SELECT NOT pg_is_in_recovery()"
    grep -q "recovery stopping at restore point \"$RESTORE_POINT\"" "$COPY/log/pgplay-drill.log"
    [ "$(sql drill1 "$PORT_DRILL" app -c 'SELECT count(*) FROM pgbench_accounts')" = "$DRILL_EXPECT" ]
    as_pg "$BIN/pg_ctl" stop -D "$COPY" -m immediate -w >/dev/null
    rm -rf -- "$COPY"
    ;;

  *)
    echo "usage: raw.sh nightly-backup|standby-first-build|standby-rebuild|standby-no-change|pitr-drill" >&2
    exit 2
    ;;
esac
