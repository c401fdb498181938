#!/usr/bin/env bash
# Where a GraphQL transition's time goes (issue #22): `bench-load` drives the real server with
# intake-to-licence flows at 16 clients while `perf` samples every CPU of the machine for a
# window in the middle of the run; the samples are then split by who spent them (PostgreSQL's
# backends, the server, the load's clients, the kernel's and everything else) and the server's
# and PostgreSQL's busiest functions listed. Root, a release build and PostgreSQL on
# 127.0.0.1:5432 (the database `pf_flows`, kept between runs like transitions.sh's).
# Usage: tools/peer-bench/where.sh [CASES] [FLOWS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
cases="${1:-20000}"
flows="${2:-3000}"
window="${3:-10}"
out=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$out"' EXIT
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE pf_flows" 2>/dev/null || true
PLEDGEFLOW_KEY_FILE="${PLEDGEFLOW_KEY_FILE:-/tmp/pf_flows.key}" PLEDGEFLOW_AUDIT_KEY_FILE="${PLEDGEFLOW_AUDIT_KEY_FILE:-/tmp/pf_flows.audit.key}" \
  PLEDGEFLOW_DATABASE_URL="postgres://postgres@127.0.0.1:5432/pf_flows" PLEDGEFLOW_LOG=warn \
  ./target/release/pledgeflow bench-load --cases "$cases" --flows "$flows" --clients 16 --rate 10 --seconds 5 > "$out/load.log" 2>&1 &
load=$!
until grep -q '^flows:' "$out/load.log"; do
  kill -0 "$load" 2>/dev/null || { cat "$out/load.log"; exit 1; }
  sleep 0.5
done
sleep 2
server=$(pgrep -P "$load" -f 'pledgeflow serve' | head -n1)
perf record -q -a -F 499 -o "$out/perf.data" -- sleep "$window" 2>/dev/null
# perf names threads: which process each belongs to, read while both still run.
server_tids=$(ls /proc/"$server"/task | tr '\n' ' ')
load_tids=$(ls /proc/"$load"/task | tr '\n' ' ')
wait "$load"
grep -E 'intake to licence|p99|peak' "$out/load.log"
echo "-- CPU samples over ${window} s of the 16-client run, by who spent them"
perf report -i "$out/perf.data" --stdio -q --sort pid,comm 2>/dev/null | awk -v server=" $server_tids " -v loader=" $load_tids " '
  /%/ { share = $1; sub("%", "", share); split($2, p, ":"); tid = p[1]; comm = $NF
        who = index(server, " " tid " ") ? "the server (pledgeflow serve)" : index(loader, " " tid " ") ? "the load clients (bench-load)" : (comm ~ /^postgres/) ? "PostgreSQL" : (tid == 0) ? "idle" : "other (kernel threads, perf, …)"
        sum[who] += share }
  END { for (w in sum) printf "%6.1f %%  %s\n", sum[w], w }' | sort -rn
echo "-- the server's busiest functions (share of its samples)"
perf report -i "$out/perf.data" --stdio -q --pid "$server" --sort dso,sym --percentage relative 2>/dev/null | head -n 25 || true
echo "-- PostgreSQL's busiest functions"
perf report -i "$out/perf.data" --stdio -q --comm postgres --sort dso,sym --percentage relative 2>/dev/null | head -n 20 || true
