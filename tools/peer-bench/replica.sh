#!/usr/bin/env bash
# Issue #22: what a read replica does to the reads' latency under write load. A private primary
# and a hot standby streaming from it (pg_createcluster on free ports, a replication line in
# their own pg_hba.conf, pg_basebackup -R; the shared cluster is left alone), CASES background
# cases on the primary, then `bench-load` twice on the same data: the inbox, a case's detail and
# the statistics at RATE requests/s while WRITERS clients run intake-to-licence flows — first
# with every read on the primary, then with PLEDGEFLOW_READ_DATABASE_URL on the standby.
# Root and a release build. Usage: tools/peer-bench/replica.sh [CASES] [WRITERS] [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
cases="${1:-20000}"
writers="${2:-8}"
rate="${3:-50}"
seconds="${4:-30}"
source tools/peer-bench/cluster.sh
primary_port=$(free_port)
replica_port=$(free_port)
primary="pf_bench_primary_$primary_port"
replica="pf_bench_replica_$replica_port"
keys=$(mktemp -d)
cleanup() {
  pg_dropcluster --stop "$version" "$replica" >/dev/null 2>&1 || true
  pg_dropcluster --stop "$version" "$primary" >/dev/null 2>&1 || true
  rm -rf "$keys"
}
trap cleanup EXIT
make_cluster "$primary" "$primary_port"
pg_ctlcluster --skip-systemctl-redirect "$version" "$primary" start
make_cluster "$replica" "$replica_port"
data="/var/lib/postgresql/$version/$replica"
find "$data" -mindepth 1 -delete
runuser -u postgres -- pg_basebackup -h 127.0.0.1 -p "$primary_port" -U postgres -D "$data" -R -X stream -c fast
pg_ctlcluster --skip-systemctl-redirect "$version" "$replica" start
psql -q -h 127.0.0.1 -p "$primary_port" -U postgres -d postgres -c "CREATE DATABASE pf_replica_bench"
url() { echo "postgres://postgres@127.0.0.1:$1/pf_replica_bench"; }
load() {
  PLEDGEFLOW_KEY_FILE="$keys/key" PLEDGEFLOW_AUDIT_KEY_FILE="$keys/audit.key" PLEDGEFLOW_DATABASE_URL="$(url "$primary_port")" PLEDGEFLOW_LOG=warn \
    ./target/release/pledgeflow bench-load --cases "$cases" --flows 200 --clients 16 --rate "$rate" --seconds "$seconds" --write-clients "$writers" "$@"
}
echo "== every read on the primary"
load | grep -E 'meanwhile|p99|peak'
echo "== reads on the standby (PLEDGEFLOW_READ_DATABASE_URL)"
PLEDGEFLOW_READ_DATABASE_URL="$(url "$replica_port")" load | grep -E 'meanwhile|p99|peak'
echo "-- the standby's replay lag at the end: $(psql -h 127.0.0.1 -p "$replica_port" -U postgres -d postgres -Atc "SELECT coalesce(round(extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000), 0) || ' ms'")"
