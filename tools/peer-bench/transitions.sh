#!/usr/bin/env bash
# Issue #22: audited transitions per second through GraphQL beside `pgbench -N` on the same
# PostgreSQL in one run. pgbench's simple-update script at 8 clients first, then `bench-load`
# (the real server over HTTP: intake-to-licence flows at 1, 16 and 64 clients, then the inbox
# and case detail under an open-loop load), then pgbench again, so a drift of the machine shows.
# Usage: tools/peer-bench/transitions.sh [CASES] [FLOWS]   (release build first; CASES background
# cases, 100000 by default — the 1 M figures in BENCHMARKS.md are `bench-load` on its own)
set -euo pipefail
cd "$(dirname "$0")/../.."
cases="${1:-100000}"
flows="${2:-2000}"
port="${PGPORT:-5432}"
admin() { psql -v ON_ERROR_STOP=1 -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "$1"; }
admin "DROP DATABASE IF EXISTS pf_pgbench WITH (FORCE)"
admin "CREATE DATABASE pf_pgbench"
pgbench -h 127.0.0.1 -p "$port" -U postgres -i -s 10 -q pf_pgbench >/dev/null 2>&1
tps() { pgbench -h 127.0.0.1 -p "$port" -U postgres -N -c 8 -j 2 -T 30 pf_pgbench 2>/dev/null | grep -oP 'tps = \K[0-9.]+' | head -n1; }
before=$(tps)
echo "pgbench -N, 8 clients, 30 s: $before TPS"
# The flows' database is kept between runs (its background cases take minutes to seed).
admin "CREATE DATABASE pf_flows" 2>/dev/null || true
# The server bench-load starts (its own data folder) takes the seeding's keys: the same token
# signing key and audit key, as several servers on one PostgreSQL share them.
out=$(PLEDGEFLOW_KEY_FILE="${PLEDGEFLOW_KEY_FILE:-/tmp/pf_flows.key}" PLEDGEFLOW_AUDIT_KEY_FILE="${PLEDGEFLOW_AUDIT_KEY_FILE:-/tmp/pf_flows.audit.key}" PLEDGEFLOW_DATABASE_URL="postgres://postgres@127.0.0.1:$port/pf_flows" PLEDGEFLOW_LOG=warn \
  ./target/release/pledgeflow bench-load --cases "$cases" --flows "$flows" --clients 1,16,64 --rate 50 --seconds 30)
echo "$out"
after=$(tps)
echo "pgbench -N, 8 clients, 30 s, after: $after TPS"
t16=$(echo "$out" | grep -oP '16 clients: .* \K[0-9]+(?= transitions/s)' | head -n1)
python3 -c "print(f'GraphQL transitions/s at 16 clients {$t16} beside pgbench -N at 8 clients {$before}..{$after} TPS: ratio {$t16/max($before,$after):.2f}')"
admin "DROP DATABASE IF EXISTS pf_pgbench WITH (FORCE)"
