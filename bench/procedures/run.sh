#!/usr/bin/env bash
# pgplay's procedures against the raw commands that do the same work, on a lab of their own, interleaved
# (bench/procedures/README.md). Usage: bash bench/procedures/run.sh [--pairs 10] [--scale 30]
# [--dir /var/lib/pgplay-bench-lab] [--base-port 21500] [--results bench/results] [--pgplay CHECKOUT]
# [--only nightly-backup,standby-first-build,standby-rebuild,pitr-drill,standby-no-change] [--keep]
# Needs root (PostgreSQL runs as the postgres OS user, as in the lab), PostgreSQL 15 and pgBackRest.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "bench:procedures: run as root" >&2; exit 1; fi
npm run --silent build
npx --no-install tsc -p bench/tsconfig.json
exec node dist/bench/bench/procedures/run.js "$@"
