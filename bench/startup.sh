#!/usr/bin/env bash
# Start-up cost without Ansible or hosts: for each built package root given (default: this one), the
# wall and CPU (user+sys) time of RUNS runs of `<the pgplay bin> validate playbooks/*.yml`, and
# the median over RUNS fresh processes of loading pgplay's loaders and then validating an inventory and
# the nightly-backup playbook. Give two roots (e.g. a copy of the package built from another commit)
# to compare them; rounds alternate between the roots so that the machine's load hits both alike.
set -euo pipefail
RUNS=${RUNS:-20}
ROUNDS=${ROUNDS:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
roots=("${@:-$here}")
inventory=$(mktemp --suffix=.yml)
probe=$(mktemp --suffix=.mjs)
trap 'rm -f "$inventory" "$probe"' EXIT
cat >"$inventory" <<'YAML'
cluster: main
postgres: { version: 15 }
connection: { transport: local }
hosts:
  db1: { address: 127.0.0.1, role: primary, pgdata: /var/lib/postgresql/15/main }
  db2: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: /var/lib/postgresql/15/standby, postgres: { port: 5433 } }
YAML
cat >"$probe" <<'JS'
const [root, inventory] = process.argv.slice(2);
const t0 = performance.now();
const { shippedActions: actions } = await import(`${root}/dist/actions/registry.js`);
const { loadPlaybook } = await import(`${root}/dist/load/playbook.js`);
const { loadInventory } = await import(`${root}/dist/load/inventory.js`);
const t1 = performance.now();
await loadInventory(inventory);
await loadPlaybook(`${root}/playbooks/nightly-backup.yml`, { actions });
console.log(`${(t1 - t0).toFixed(1)} ${(performance.now() - t1).toFixed(1)}`);
JS
median() { sort -n | sed -n "$(((RUNS + 1) / 2))p"; }
for round in $(seq "$ROUNDS"); do
  for root in "${roots[@]}"; do
    cd "$root"
    TIMEFORMAT='%R %U %S'
    bin=$(node -p "require('./package.json').bin.pgplay")
    # The bin as a shell runs it: bin/pgplay (the launcher) itself, a bin that is node code through node.
    case $bin in *.js) run=(node "$bin") ;; *) run=("./$bin") ;; esac
    read -r real user sys < <({ time (for _ in $(seq "$RUNS"); do "${run[@]}" validate playbooks/*.yml >/dev/null; done); } 2>&1)
    phases=$(for _ in $(seq "$RUNS"); do node "$probe" "$root" "$inventory"; done)
    printf '%s round %s: validate playbooks/*.yml %.0f ms wall, %.0f ms CPU per run; loaders %s ms, inventory + playbook %s ms (medians)\n' \
      "$root" "$round" "$(echo "$real * 1000 / $RUNS" | bc -l)" "$(echo "($user + $sys) * 1000 / $RUNS" | bc -l)" \
      "$(cut -d' ' -f1 <<<"$phases" | median)" "$(cut -d' ' -f2 <<<"$phases" | median)"
  done
done
