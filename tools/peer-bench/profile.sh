#!/usr/bin/env bash
# Where the sweep's time goes (issue #22): a private PostgreSQL cluster (pg_createcluster on a
# free port, pg_stat_statements preloaded, the shared cluster left alone), N due reminders and
# then N due expiries fired by `bench-timers`, and the statements that took the database's time
# for each. Then the peer benchmark on the same cluster, both modes. Needs root (the cluster is
# the postgres user's) and a release build. Usage: tools/peer-bench/profile.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-100000}"
version=$(ls /usr/lib/postgresql | sort -n | tail -n1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
name="pf_profile_$port"
pg_createcluster -p "$port" "$version" "$name" >/dev/null
trap 'pg_dropcluster --stop "$version" "$name" >/dev/null 2>&1 || true' EXIT
conf="/etc/postgresql/$version/$name"
printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' > "$conf/pg_hba.conf"
# The shared cluster's settings (fsync on), plus the statement statistics.
printf "listen_addresses = '127.0.0.1'\nshared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\nmax_connections = 200\n" > "$conf/conf.d/profile.conf"
pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
sql() { psql -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$1" -Atc "$2"; }
top() {
  sql pf_profile "SELECT round(total_exec_time)::text || ' ms' , calls, round(mean_exec_time::numeric, 3)::text || ' ms', rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 150)
                  FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'pf_profile')
                  ORDER BY total_exec_time DESC LIMIT 12" | column -t -s '|'
}
for event in remind expire; do
  sql postgres "DROP DATABASE IF EXISTS pf_profile WITH (FORCE)" >/dev/null
  sql postgres "CREATE DATABASE pf_profile" >/dev/null
  sql pf_profile "CREATE EXTENSION pg_stat_statements" >/dev/null
  url="postgres://postgres@127.0.0.1:$port/pf_profile"
  echo "== $n due $event timers"
  # Seeding is not measured: the statistics are reset once the fixtures are in.
  PLEDGEFLOW_DATABASE_URL="$url" PLEDGEFLOW_LOG=warn ./target/release/pledgeflow bench-timers --pending 0 --due "$n" --event "$event"
  top
done
PGPORT="$port" bash tools/peer-bench/run.sh "$n"
