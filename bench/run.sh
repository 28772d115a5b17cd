#!/usr/bin/env bash
# pgplay against Ansible over real SSH on this machine; what it measures and the last figures are in
# bench/README.md. Usage: bash bench/run.sh [--runs N] [--warmup N] [--fanout-runs N] [--memory-runs N]
# (or npm run bench -- --runs N ...). Needs root: the hosts are sshd instances on loopback addresses
# that the benchmark logs in to as root, as the SSH test suite does.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "bench: run as root (it starts sshd on loopback addresses and logs in as root)" >&2
  exit 1
fi

missing=()
command -v ansible-playbook >/dev/null || missing+=(ansible-core)
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v ssh >/dev/null || missing+=(openssh-client)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# pgplay as users run it (dist/), then the benchmark itself, which reuses the SSH test rig
# (test/support/sshd.ts) compiled beside it into dist/bench/.
npm run --silent build
npx --no-install tsc -p bench/tsconfig.json
exec node dist/bench/bench/run.js "$@"
