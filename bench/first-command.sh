#!/usr/bin/env bash
# Start-up as a run sees it: milliseconds from the launch to the first command pgplay starts on a host,
# for a run of a one-step playbook on a two-host inventory.
# Locally, a preloaded hook (node --import) timestamps every child_process.spawn; the first one is the host
# lock's or the facts' command (or the command helper's start). TRANSPORT=ssh runs the same over SSH: an
# sshd of its own on 127.0.0.2:${SSH_PORT:-21700} (root by key, strict known_hosts), stopped by pid, whose
# authorized key runs every command through a forced command that stamps the start of the run's first one
# on the host (bash's $EPOCHREALTIME) and then runs it as asked: the moment the host starts the command,
# whatever ssh2 (bundled into pgplay since session 19) sent before it. The CPU time (user + system) the
# process used until then (local only) and in all is less sensitive to the machine's load than wall time.
# Over SSH the same runs also measure three floors, alternating with the roots, from the launch alike, with the
# same key, known host key and sshd. OpenSSH's own client (`ssh … true`) with the fastest exchange it has here
# (curve25519-sha256 and ssh-ed25519, as ssh2 negotiates; OpenSSH's default sntrup761 costs ~70 ms more CPU),
# until the host starts the command: what sshd itself takes, the C client's ~20 ms of CPU aside. A bare node
# script that execs `true` with ssh2 from the first root's node_modules (all of ssh2, compiled cold: node 20
# has no compile cache of its own, where pgplay's bundle loads a trimmed ssh2 with its V8 cache), the same
# way. And `node -e 0`, launch to exit: node's own start, before any code of a node client can connect.
# Median of RUNS runs per built package root; with two roots (e.g. a copy
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
import { readFileSync, writeSync } from 'node:fs';
let first;
const spawn = cp.spawn;
cp.spawn = function (...args) {
  mark();
  return spawn.apply(this, args);
};
syncBuiltinESMExports();
let cpuAtFirst;
// Times count from the launch (BENCH_LAUNCHED, bash's $EPOCHREALTIME as the bin was started): a bin that is
// a launcher script (bin/pgplay) runs before node does, and its time is the user's too.
const launched = process.env.BENCH_LAUNCHED ? Number(process.env.BENCH_LAUNCHED) * 1000 - performance.timeOrigin : 0;
const mark = () => { first ??= performance.now() - launched; cpuAtFirst ??= process.cpuUsage(); };
process.on('exit', () => {
  // Over SSH: when the host started the run's first command, as its forced command stamped it.
  if (process.env.FIRST_COMMAND_STAMP) {
    try {
      first = (Number(readFileSync(process.env.FIRST_COMMAND_STAMP, 'utf8')) - Number(process.env.BENCH_LAUNCHED)) * 1000;
    } catch {}
  }
  const cpu = (u) => (u ? ((u.user + u.system) / 1000).toFixed(1) : 'none');
  writeSync(2, `first-command ${first?.toFixed(1) ?? 'none'} exit ${(performance.now() - launched).toFixed(1)} cpu-first ${cpu(cpuAtFirst)} cpu ${cpu(process.cpuUsage())}\n`);
});
JS
connection='{ transport: local }'
address=127.0.0.1
ssh_env=()
if [ "${TRANSPORT:-local}" = ssh ]; then
  port=${SSH_PORT:-21700}
  address=127.0.0.2
  mkdir -p /run/sshd "$work/home"
  ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$work/id"
  cat >"$work/stamp.sh" <<STAMP
t=\$EPOCHREALTIME
( set -C; printf '%s\\n' "\$t" >"$work/first-stamp" ) 2>/dev/null
if [ -n "\${SSH_ORIGINAL_COMMAND-}" ]; then exec /bin/sh -c "\$SSH_ORIGINAL_COMMAND"; else exec /bin/sh; fi
STAMP
  echo "command=\"/bin/bash $work/stamp.sh\" $(cat "$work/id.pub")" >"$work/authorized_keys"
  echo "[$address]:$port $(cut -d' ' -f1,2 "$work/host_key.pub")" >"$work/known_hosts"
  cat >"$work/sshd_config" <<CFG
ListenAddress $address:$port
HostKey $work/host_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxStartups 200
SetEnv HOME=$work/home
CFG
  /usr/sbin/sshd -f "$work/sshd_config"
  # sshd writes its pid file once it listens; stop it by that pid.
  for _ in $(seq 100); do [ -s "$work/sshd.pid" ] && break; sleep 0.05; done
  trap 'kill "$(cat "$work/sshd.pid")"; rm -rf "$work"' EXIT
  connection="{ transport: ssh, user: root, port: $port, identityFile: $work/id, knownHosts: $work/known_hosts, hostKeyChecking: strict, agent: false }"
  ssh_env=(FIRST_COMMAND_STAMP="$work/first-stamp")
  cat >"$work/bare-ssh2.cjs" <<'JS'
// A bare ssh2 client: connect (key, the known host key), exec `true`, end.
const [, , root, host, port, id, knownKey] = process.argv;
const { Client } = require(`${root}/node_modules/ssh2`);
const { readFileSync } = require('node:fs');
const expected = Buffer.from(knownKey, 'base64');
const client = new Client();
client.on('ready', () =>
  client.exec('true', (err, stream) => {
    if (err) throw err;
    stream.on('close', () => client.end()).resume();
    stream.stderr.resume();
  }),
);
client.connect({ host, port: Number(port), username: 'root', privateKey: readFileSync(id), hostVerifier: (key) => expected.equals(key) });
JS
  floor_ssh=(ssh -F /dev/null -p "$port" -i "$work/id" -o IdentitiesOnly=yes -o GSSAPIAuthentication=no \
    -o KexAlgorithms=curve25519-sha256 -o HostKeyAlgorithms=ssh-ed25519 -o Ciphers=aes128-gcm@openssh.com \
    -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes "root@$address" true)
  # Without NODE_EXTRA_CA_CERTS, as bin/pgplay starts node (reading that file costs ~40 ms of node's start).
  floor_node=(env -u NODE_EXTRA_CA_CERTS node "$work/bare-ssh2.cjs" "${roots[0]}" "$address" "$port" "$work/id" "$(cut -d' ' -f2 "$work/host_key.pub")")
fi
cat >"$work/inventory.yml" <<YAML
cluster: first-command
postgres: { version: 15 }
connection: $connection
hosts:
  db1: { address: $address, role: primary, pgdata: $work/pg1 }
  db2: { address: $address, role: standby, upstream: db1, pgdata: $work/pg2, postgres: { port: 5433 } }
YAML
cat >"$work/playbook.yml" <<'YAML'
name: first-command
steps:
  - id: one
    name: one command
    hosts: db1
    command: { argv: ["true"] }
YAML
# Each root runs its `pgplay` bin (package.json "bin") as a shell does: bin/pgplay, the launcher, itself (the
# hook through NODE_OPTIONS); a bin that is node code (the bundle, or dist/cli/main.js before it) through node.
bins=()
for root in "${roots[@]}"; do bins+=("$root/$(node -p 'require(process.argv[1]).bin.pgplay' "$root/package.json")"); done
median() { sort -n | sed -n "$(((RUNS + 1) / 2))p"; }
for i in $(seq "$RUNS"); do
  for r in "${!roots[@]}"; do
    case ${bins[$r]} in
      *.js) launch=(env "${ssh_env[@]}" BENCH_LAUNCHED="$EPOCHREALTIME" node --import "$work/hook.mjs" "${bins[$r]}") ;;
      *) launch=(env "${ssh_env[@]}" BENCH_LAUNCHED="$EPOCHREALTIME" NODE_OPTIONS="--import $work/hook.mjs" "${bins[$r]}") ;;
    esac
    rm -f "$work/first-stamp"
    "${launch[@]}" run "$work/playbook.yml" -i "$work/inventory.yml" \
      --state-dir "$work/state-$r" --output json 2>&1 >/dev/null | grep '^first-command' >>"$work/times-$r"
  done
  if [ "${TRANSPORT:-local}" = ssh ]; then
    for floor in ssh node; do
      rm -f "$work/first-stamp"
      launched=$EPOCHREALTIME
      if [ $floor = ssh ]; then "${floor_ssh[@]}"; else "${floor_node[@]}"; fi
      awk -v s="$(cat "$work/first-stamp")" -v l="$launched" 'BEGIN { printf "%.1f\n", (s - l) * 1000 }' >>"$work/floor-$floor"
    done
    launched=$EPOCHREALTIME
    env -u NODE_EXTRA_CA_CERTS node -e 0
    awk -v s="$EPOCHREALTIME" -v l="$launched" 'BEGIN { printf "%.1f\n", (s - l) * 1000 }' >>"$work/floor-node-start"
  fi
done
for r in "${!roots[@]}"; do
  printf '%s (%s): first command at %s ms (CPU until then %s ms), exit at %s ms (CPU %s ms); medians of %s, load %s\n' "${roots[$r]}" "${TRANSPORT:-local}" \
    "$(cut -d' ' -f2 "$work/times-$r" | median)" "$(cut -d' ' -f6 "$work/times-$r" | median)" \
    "$(cut -d' ' -f4 "$work/times-$r" | median)" "$(cut -d' ' -f8 "$work/times-$r" | median)" "$RUNS" "$(cut -d' ' -f1 /proc/loadavg)"
done
if [ "${TRANSPORT:-local}" = ssh ]; then
  printf 'floors, the same runs: OpenSSH (ssh … true, curve25519) starts the command at %s ms; a bare node + ssh2 client at %s ms; node -e 0 exits at %s ms; medians of %s\n' \
    "$(median <"$work/floor-ssh")" "$(median <"$work/floor-node")" "$(median <"$work/floor-node-start")" "$RUNS"
fi
