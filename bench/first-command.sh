#!/usr/bin/env bash
# Start-up as a run sees it: milliseconds from process start (performance.timeOrigin) to the first
# command pgplay starts on a host, for a local run of a one-step playbook on a two-host inventory.
# A preloaded hook (node --import) timestamps every child_process.spawn; the first one is the host
# lock's or the facts' command. The CPU time (user + system) the process used until then and in all is
# less sensitive to the machine's load than wall time. Median of RUNS runs per built package root; with two roots (e.g. a copy
# built from another commit) the runs alternate between them so the machine's load hits both alike.
set -euo pipefail
RUNS=${RUNS:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
roots=("${@:-$here}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/hook.mjs" <<'JS'
import cp from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { writeSync } from 'node:fs';
let first;
const spawn = cp.spawn;
cp.spawn = function (...args) {
  mark();
  return spawn.apply(this, args);
};
syncBuiltinESMExports();
let cpuAtFirst;
const mark = () => { first ??= performance.now(); cpuAtFirst ??= process.cpuUsage(); };
process.on('exit', () => {
  const cpu = (u) => (u ? ((u.user + u.system) / 1000).toFixed(1) : 'none');
  writeSync(2, `first-command ${first?.toFixed(1) ?? 'none'} exit ${performance.now().toFixed(1)} cpu-first ${cpu(cpuAtFirst)} cpu ${cpu(process.cpuUsage())}\n`);
});
JS
cat >"$work/inventory.yml" <<YAML
cluster: first-command
postgres: { version: 15 }
connection: { transport: local }
hosts:
  db1: { address: 127.0.0.1, role: primary, pgdata: $work/pg1 }
  db2: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: $work/pg2, postgres: { port: 5433 } }
YAML
cat >"$work/playbook.yml" <<'YAML'
name: first-command
steps:
  - id: one
    name: one command
    hosts: db1
    command: { argv: ["true"] }
YAML
median() { sort -n | sed -n "$(((RUNS + 1) / 2))p"; }
for i in $(seq "$RUNS"); do
  for r in "${!roots[@]}"; do
    node --import "$work/hook.mjs" "${roots[$r]}/dist/cli/main.js" run "$work/playbook.yml" -i "$work/inventory.yml" \
      --state-dir "$work/state-$r" --output json 2>&1 >/dev/null | grep '^first-command' >>"$work/times-$r"
  done
done
for r in "${!roots[@]}"; do
  printf '%s: first command at %s ms (CPU until then %s ms), exit at %s ms (CPU %s ms); medians of %s, load %s\n' "${roots[$r]}" \
    "$(cut -d' ' -f2 "$work/times-$r" | median)" "$(cut -d' ' -f6 "$work/times-$r" | median)" \
    "$(cut -d' ' -f4 "$work/times-$r" | median)" "$(cut -d' ' -f8 "$work/times-$r" | median)" "$RUNS" "$(cut -d' ' -f1 /proc/loadavg)"
done
