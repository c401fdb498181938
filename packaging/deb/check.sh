#!/usr/bin/env bash
# The package as an operator gets it: built, unpacked into a temporary root, lintian clean of
# errors, the unit verified by systemd-analyze where it runs, and the unpacked binary serving with
# the packaged configuration from a directory that is not the checkout.
set -euo pipefail
cd "$(dirname "$0")/../.."

deb=$(bash packaging/deb/build.sh)
echo "built $deb"
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
root="$work/root"
dpkg-deb -x "$deb" "$root"
dpkg-deb -I "$deb" >/dev/null

command -v lintian >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends lintian >/dev/null; }
lintian --fail-on error --suppress-tags no-manual-page "$deb"
echo "lintian: no errors"

if command -v systemd-analyze >/dev/null; then
  # Offline: the unit as installed, its ExecStart pointed at the unpacked binary.
  mkdir -p "$work/units"
  sed "s#/usr/bin/pledgeflow#$root/usr/bin/pledgeflow#; s#/etc/pledgeflow/#$root/etc/pledgeflow/#" \
    "$root/lib/systemd/system/pledgeflow.service" > "$work/units/pledgeflow.service"
  SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$work/units/pledgeflow.service"
  echo "systemd-analyze verify: clean"
fi

# Serve from elsewhere with the packaged configuration; only the places it writes are moved.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/run"
(cd "$work/run" && env -u PLEDGEFLOW_WORKFLOWS_DIR -u PLEDGEFLOW_TEMPLATES_DIR \
  PLEDGEFLOW_DATABASE_URL="sqlite://$work/run/pledgeflow.db" PLEDGEFLOW_DATA_DIR="$work/run/data" \
  "$root/usr/bin/pledgeflow" --config "$root/etc/pledgeflow/pledgeflow.toml" check-workflows | grep -q "from the built-in definitions")
(cd "$work/run" && env -u PLEDGEFLOW_WORKFLOWS_DIR -u PLEDGEFLOW_TEMPLATES_DIR \
  PLEDGEFLOW_DATABASE_URL="sqlite://$work/run/pledgeflow.db" PLEDGEFLOW_DATA_DIR="$work/run/data" \
  "$root/usr/bin/pledgeflow" --config "$root/etc/pledgeflow/pledgeflow.toml" serve --listen "$port" > "$work/serve.log" 2>&1) &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" | grep -q '"ready":true' || { cat "$work/serve.log"; exit 1; }
curl -fsS "http://127.0.0.1:$port/" | grep -q '<main id="main"' || { echo "the console is not served"; exit 1; }
echo "the packaged binary serves with the packaged configuration"
