#!/usr/bin/env bash
# Beside a peer (issues #8, #22): on one PostgreSQL, in one run, graphile-worker runs N delayed
# no-op jobs in both its modes — plain (concurrency 10) and batched (local queue of 500, batched
# completion, concurrency 24) — and pledgeflow's sweeper fires N due reminders; prints the rates
# and both ratios. Usage: tools/peer-bench/run.sh [N]   (release build first)
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-100000}"
port="${PGPORT:-5432}"   # another cluster: PGPORT=… (tools/peer-bench/profile.sh makes one)
admin() { psql -v ON_ERROR_STOP=1 -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "$1"; }
fresh() { admin "DROP DATABASE IF EXISTS pf_peer WITH (FORCE)"; admin "CREATE DATABASE pf_peer"; }
url="postgres://postgres@127.0.0.1:$port/pf_peer"
(cd tools/peer-bench && npm ci --no-audit --no-fund --silent)

rate() { python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs_per_second"]))'; }
fresh
plain=$(node tools/peer-bench/bench.mjs "$url" "$n" 10 plain | tail -n1)
echo "graphile-worker plain:   $plain"
fresh
batched=$(node tools/peer-bench/bench.mjs "$url" "$n" 24 batched | tail -n1)
echo "graphile-worker batched: $batched"
fresh
sweep=$(PLEDGEFLOW_DATABASE_URL="$url" PLEDGEFLOW_LOG=warn ./target/release/pledgeflow bench-timers --pending 0 --due "$n")
echo "$sweep"
ours=$(echo "$sweep" | grep -oP '[0-9]+(?= timers/s)' | head -n1)
p=$(echo "$plain" | rate)
b=$(echo "$batched" | rate)
python3 -c "print(f'pledgeflow {$ours} reminders/s; graphile-worker plain {$p} jobs/s (ratio {$ours/$p:.2f}), batched {$b} jobs/s (ratio {$ours/$b:.2f})')"
admin "DROP DATABASE IF EXISTS pf_peer WITH (FORCE)"
