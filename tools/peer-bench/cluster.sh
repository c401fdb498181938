# Sourced by the scripts that need a PostgreSQL cluster of their own (profile.sh, replica.sh):
# the newest installed version, a free port, and a cluster trusting local, TCP and replication
# connections from 127.0.0.1 with the shared cluster's durability (fsync on) — the figures are a
# service's, not a test's. The shared cluster on 5432 is left alone. Root.
version=$(ls /usr/lib/postgresql | sort -n | tail -n1)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# make_cluster NAME PORT [SETTINGS]: SETTINGS are postgresql.conf lines (printf escapes allowed).
make_cluster() {
  pg_createcluster -p "$2" "$version" "$1" >/dev/null
  local conf="/etc/postgresql/$version/$1"
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n' > "$conf/pg_hba.conf"
  printf "listen_addresses = '127.0.0.1'\nmax_connections = 200\n%b" "${3:-}" > "$conf/conf.d/bench.conf"
}
