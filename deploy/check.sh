#!/usr/bin/env bash
# Checks the monitoring files: the alert rules load and their unit tests pass (promtool, from
# Debian's prometheus package), and the dashboard is valid JSON whose every metric is one the
# code records.
set -euo pipefail
cd "$(dirname "$0")"
command -v promtool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
promtool check rules prometheus/pledgeflow-rules.yml
(cd prometheus && promtool test rules pledgeflow-rules.test.yml)
python3 -m json.tool grafana/pledgeflow.json >/dev/null
missing=0
for metric in $(grep -oh 'pledgeflow_[a-z_]*' grafana/pledgeflow.json prometheus/pledgeflow-rules.yml | sed 's/_bucket$//' | sort -u); do
  if ! grep -rq "\"$metric\"\|$metric\b" ../src; then echo "not recorded by the code: $metric"; missing=1; fi
done
[ "$missing" = 0 ]
echo "rules, their tests and the dashboard: ok"
