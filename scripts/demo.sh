#!/usr/bin/env bash
# npm run demo: from a clone to a backed-up cluster with a streaming standby, a point-in-time-recovery
# drill and a promotion, on this machine. Installs what is missing (Debian: PostgreSQL 15, the backup
# tool; npm ci and the build), builds the embedded lab from scratch (`pgplay lab down` first, so a second
# run starts clean), runs the four shipped procedures against it and shows the drill report.
#
# The backup engine: npm run demo -- --backup-tool pgbackrest|barman|basebackup (or PGPLAY_DEMO_BACKUP_TOOL);
# by default the lab's own choice (pgBackRest when installed and new enough, else pg_basebackup).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

backup_tool="${PGPLAY_DEMO_BACKUP_TOOL:-}"
while [ "$#" -gt 0 ]; do
  case "$1" in
    --backup-tool) [ "$#" -ge 2 ] || { echo "--backup-tool needs a value: pgbackrest, barman or basebackup" >&2; exit 2; }; backup_tool=$2; shift 2 ;;
    --backup-tool=*) backup_tool=${1#*=}; shift ;;
    *) echo "usage: npm run demo [-- --backup-tool pgbackrest|barman|basebackup]" >&2; exit 2 ;;
  esac
done
case "$backup_tool" in
  ''|pgbackrest|barman|basebackup) ;;
  *) echo "--backup-tool must be pgbackrest, barman or basebackup, got \"$backup_tool\"" >&2; exit 2 ;;
esac

# ---- What the demo needs ------------------------------------------------------------------------------
missing=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
case "$backup_tool" in
  barman) command -v barman >/dev/null 2>&1 || missing+=(barman); command -v barman-wal-archive >/dev/null 2>&1 || missing+=(barman-cli) ;;
  basebackup) ;;
  *) command -v pgbackrest >/dev/null 2>&1 || missing+=(pgbackrest) ;;
esac
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "the demo needs: ${missing[*]} (sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  say "Installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
if [ ! -d node_modules ]; then
  say 'Installing the npm dependencies (npm ci)'
  npm ci --no-audit --no-fund
fi
if [ ! -f dist/bundle/main.js ] || [ -n "$(find src templates -newer dist/bundle/main.js -print -quit 2>/dev/null)" ]; then
  say 'Building pgplay'
  npm run --silent build
fi

export CI="${CI:-true}"   # plain line output, as in a log
pgplay() { bin/pgplay "$@"; }

# ---- The lab ----------------------------------------------------------------------------------------
say "A fresh lab: primary db1 with sample data, repository bk1${backup_tool:+ ($backup_tool)}, room for standby db2 and drill host drill1"
pgplay lab down
pgplay lab up ${backup_tool:+--backup-tool "$backup_tool"}

lab_json=$(pgplay lab status --output json)
field() { node -e "const s = JSON.parse(process.argv[1]); console.log($1)" "$lab_json"; }
lab_dir=$(field 's.dir')
db1_port=$(field 's.hosts.find((h) => h.name === "db1").port')
psql_db1() { runuser -u postgres -- /usr/lib/postgresql/15/bin/psql -X -q -tA -h "$lab_dir/db1/run" -p "$db1_port" -d app -c "$1"; }
if [ "$(id -u)" -ne 0 ]; then psql_db1() { /usr/lib/postgresql/15/bin/psql -X -q -tA -h "$lab_dir/db1/run" -p "$db1_port" -d app -c "$1"; }; fi

# ---- The four procedures ----------------------------------------------------------------------------
say 'nightly-backup: archiving, the repository checked, a full backup, retention, globals'
pgplay run playbooks/nightly-backup.yml

say 'standby-from-backup: db2 restored from the repository, streaming from db1'
pgplay run playbooks/standby-from-backup.yml -p host=db2 --yes

say 'A mistake to recover from: an order is written, a restore point made, then the table is dropped'
psql_db1 "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'the order we must not lose') ON CONFLICT DO NOTHING"
psql_db1 "SELECT pg_create_restore_point('demo-before-drop')" >/dev/null
psql_db1 'DROP TABLE orders'
echo "db1: orders dropped after restore point demo-before-drop"

say 'pitr-drill: restore into drill1, recover to demo-before-drop, check the order is back, tear down'
report="$lab_dir/demo-drill.json"
drill_rc=0
pgplay run playbooks/pitr-drill.yml -p target=name -p target_value=demo-before-drop -p checks_database=app \
  -p 'checks=[{"sql":"SELECT item FROM orders WHERE id = 1","expect":"the order we must not lose"},{"sql":"SELECT count(*) FROM accounts","expect":"1000"}]' \
  --report "$report" --yes || drill_rc=$?

say 'promote: db2 becomes the primary (db1 fenced), a new full backup, db1 rebuilt as a standby of db2'
pgplay run playbooks/promote.yml -p candidate=db2 -p rebuild_old_primary=true --yes

say 'The lab now'
pgplay lab status

say "The drill report ($report, text beside it)"
cat "${report%.json}.txt"
echo
echo "Explore: pgplay lab status | pgplay history | pgplay run playbooks/<name>.yml | pgplay lab down"
exit "$drill_rc"
