#!/usr/bin/env bash
# Runs the README's walkthrough as written: every ```sh block preceded by a line
# `<!-- walkthrough -->`, in order, in one bash with -e and pipefail (a failing command, or a `q`
# meeting an error, fails the run), against a fresh demo server on a training clock started for
# it from the release binary. The set-up, test and bench blocks carry no mark and are not run.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=./target/release/pledgeflow
[ -x "$bin" ] || cargo build --release --locked --quiet
for tool in curl jq; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null; }
done

work="$(mktemp -d)"
script="$work/walkthrough.sh"
awk '
  /^<!-- walkthrough -->$/ { marked = 1; next }
  marked && /^```sh/ { inside = 1; marked = 0; blocks++; print "# --- block " blocks; next }
  inside && /^```$/ { inside = 0; next }
  inside { print }
  !inside && NF { marked = marked && /^<!-- walkthrough -->$/ }
  END { if (blocks == 0) exit 1 }
' README.md > "$script" || { echo "walkthrough: no marked block in README.md" >&2; exit 1; }
echo "walkthrough: $(grep -c '^# --- block' "$script") blocks from README.md"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The server and the blocks share one database (and so one signing key for the tokens).
export PLEDGEFLOW_DATABASE_URL="sqlite://$work/walk.db" PLEDGEFLOW_DATA_DIR="$work/data"
PLEDGEFLOW_CLOCK=manual PLEDGEFLOW_LISTEN="127.0.0.1:$port" "$bin" serve --demo > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "walkthrough: the demo server did not start; its log:" >&2; tail -30 "$work/server.log" >&2; exit 1; }

if PF="http://127.0.0.1:$port" bash -euo pipefail -x "$script"; then
  echo "walkthrough: every block ran"
else
  echo "walkthrough: FAILED (script $script; server log $work/server.log)" >&2
  tail -20 "$work/server.log" >&2
  exit 1
fi
