#!/usr/bin/env bash
# Beside a peer (issue #8): on one PostgreSQL, in one run, graphile-worker runs N delayed jobs
# and pledgeflow's sweeper fires N due timers; prints both rates and the ratio.
# Usage: tools/peer-bench/run.sh [N] [graphile-worker concurrency]   (release build first)
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-100000}"
concurrency="${2:-10}"
admin() { psql -v ON_ERROR_STOP=1 -q -h 127.0.0.1 -U postgres -d postgres -c "$1"; }
admin "DROP DATABASE IF EXISTS pf_peer WITH (FORCE)"
admin "CREATE DATABASE pf_peer"
url="postgres://postgres@127.0.0.1:5432/pf_peer"
(cd tools/peer-bench && npm ci --no-audit --no-fund --silent)

peer=$(node tools/peer-bench/bench.mjs "$url" "$n" "$concurrency" | tail -n1)
echo "graphile-worker: $peer"
sweep=$(PLEDGEFLOW_DATABASE_URL="$url" PLEDGEFLOW_LOG=warn ./target/release/pledgeflow bench-timers --pending 0 --due "$n")
echo "$sweep"
ours=$(echo "$sweep" | grep -oP '[0-9]+(?= timers/s)')
theirs=$(echo "$peer" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs_per_second"]))')
python3 -c "print(f'pledgeflow {$ours} timers/s, graphile-worker {$theirs} jobs/s (concurrency $concurrency): ratio {$ours/$theirs:.2f}')"
admin "DROP DATABASE IF EXISTS pf_peer WITH (FORCE)"
