#!/usr/bin/env bash
# Where the sweep's time goes (issue #22): a private PostgreSQL cluster (pg_createcluster on a
# free port, pg_stat_statements preloaded, the shared cluster left alone), N due reminders and
# then N due expiries fired by `bench-timers`, and the statements that took the database's time
# for each. Then the peer benchmark on the same cluster, both modes. Needs root (the cluster is
# the postgres user's) and a release build. While the timed sweep runs, the sessions' wait events
# are sampled every 10 ms (what the statements wait on, not only how long they took).
# Usage: tools/peer-bench/profile.sh [N] [EVENTS] [bench-timers options…]
#   EVENTS: "remind expire" by default; PEER=0 skips the peer run; e.g.
#   PEER=0 tools/peer-bench/profile.sh 50000 remind --tasks 2 --batch 256
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-100000}"
events="${2:-remind expire}"
shift $(( $# > 2 ? 2 : $# ))
source tools/peer-bench/cluster.sh
port=$(free_port)
name="pf_profile_$port"
trap 'pg_dropcluster --stop "$version" "$name" >/dev/null 2>&1 || true' EXIT
# The statement statistics beside the usual settings.
make_cluster "$name" "$port" "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n"
pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
sql() { psql -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$1" -Atc "$2"; }
top() {
  sql pf_profile "SELECT round(total_exec_time)::text || ' ms' , calls, round(mean_exec_time::numeric, 3)::text || ' ms', rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 150)
                  FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'pf_profile')
                  ORDER BY total_exec_time DESC LIMIT 12" | column -t -s '|'
}
# Samples every busy session's wait event (CPU when it waits on nothing; "idle in transaction"
# when it waits for this process's next statement) into an unlogged table, a transaction per
# sample so that pg_stat_activity is read afresh.
sampler() {
  sql pf_profile "CREATE UNLOGGED TABLE IF NOT EXISTS waits (what text);
    CREATE OR REPLACE PROCEDURE sample() LANGUAGE plpgsql AS \$\$ BEGIN LOOP
      INSERT INTO waits SELECT CASE WHEN state <> 'active' THEN state ELSE coalesce(wait_event_type || ':' || wait_event, 'CPU') END
        FROM pg_stat_activity WHERE datname = 'pf_profile' AND state <> 'idle' AND application_name <> 'sampler' AND pid <> pg_backend_pid();
      COMMIT; PERFORM pg_sleep(0.01); END LOOP; END \$\$" >/dev/null
  PGAPPNAME=sampler psql -h 127.0.0.1 -p "$port" -U postgres -d pf_profile -qc "CALL sample()" >/dev/null 2>&1 &
}
stop_sampler() { sql pf_profile "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sampler'" >/dev/null; }
waits() {
  echo "-- the sweep's sessions: mean busy at once, then what they waited on (share of samples)"
  sql pf_profile "SELECT round(count(*)::numeric / greatest((SELECT calls FROM pg_stat_statements WHERE query LIKE 'INSERT INTO waits%' LIMIT 1), 1), 2) || ' sessions busy on average' FROM waits"
  sql pf_profile "SELECT round(100.0 * count(*) / sum(count(*)) OVER (), 1)::text || ' %', what FROM waits GROUP BY what ORDER BY count(*) DESC LIMIT 10" | column -t -s '|'
}
for event in $events; do
  sql postgres "DROP DATABASE IF EXISTS pf_profile WITH (FORCE)" >/dev/null
  sql postgres "CREATE DATABASE pf_profile" >/dev/null
  sql pf_profile "CREATE EXTENSION pg_stat_statements" >/dev/null
  url="postgres://postgres@127.0.0.1:$port/pf_profile"
  echo "== $n due $event timers"
  # Seeding is not measured: the statistics are reset once the fixtures are in.
  PLEDGEFLOW_DATABASE_URL="$url" PLEDGEFLOW_LOG=warn ./target/release/pledgeflow bench-timers --pending 0 --due "$n" --event "$event" "$@" |
    while IFS= read -r line; do
      echo "$line"
      case "$line" in *"pg_stat_statements reset"*) sampler ;; "fired "*) stop_sampler ;; esac
    done
  top
  waits
done
if [ "${PEER:-1}" != 0 ]; then PGPORT="$port" bash tools/peer-bench/run.sh "$n"; fi
