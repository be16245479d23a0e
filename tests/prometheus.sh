#!/usr/bin/env bash
# A real Prometheus scrapes winsink: `promtool check metrics` passes on /metrics, and the
# PromQL query sum(winsink_queries_total{decision="block"}) through Prometheus's HTTP
# API returns exactly the number of blocked queries sent with dig.
#
# Needs: prometheus and promtool (Debian package `prometheus`), dig, curl, python3, and
# a built winsink (WINSINK, default target/debug/winsink). Everything listens on
# 127.0.0.1, on ports the kernel picks; the whole run is bounded by PROM_TIMEOUT seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

. tests/lib.sh
need prometheus promtool dig curl python3
WINSINK=${WINSINK:-target/debug/winsink}
TIMEOUT=${PROM_TIMEOUT:-120}
BLOCKED=7
workdir winsink-prometheus
# The watchdog: a hang fails the script instead of the CI run.
watchdog "$TIMEOUT" prometheus.sh

# winsink: the shipped config (Diagnostic Data blocked), DNS and HTTP on free ports.
"$WINSINK" run --config config/winsink.toml --listen 127.0.0.1:0 --http 127.0.0.1:0 \
    --upstream udp://127.0.0.1:9 --log-format json >"$WORK/winsink.out" 2>"$WORK/winsink.err" &
track "$!"
DNS=""; HTTP=""
for _ in $(seq 100); do
    DNS=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/winsink.err" | head -1)
    HTTP=$(sed -n 's/.*http: serving .* on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/winsink.err" | head -1)
    [[ -n $DNS && -n $HTTP ]] && break
    sleep 0.1
done
[[ -n $DNS && -n $HTTP ]] || { cat "$WORK/winsink.err" >&2; echo "winsink did not start" >&2; exit 1; }
echo "winsink: dns $DNS, http $HTTP"

for i in $(seq "$BLOCKED"); do
    answer=$(dig +short +tries=1 +time=2 -p "${DNS##*:}" @127.0.0.1 watson.events.data.microsoft.com A)
    [[ $answer == 0.0.0.0 ]] || { echo "query $i: expected the sinkhole answer, got '$answer'" >&2; exit 1; }
done

# The exposition format passes Prometheus's own linter.
curl -sf "http://$HTTP/metrics" >"$WORK/metrics.txt"
promtool check metrics <"$WORK/metrics.txt"
echo "promtool check metrics: ok"

PROM=$(free_port)
cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: winsink
    static_configs:
      - targets: ["$HTTP"]
YAML
promtool check config "$WORK/prometheus.yml" >/dev/null
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
    --web.listen-address="127.0.0.1:$PROM" >"$WORK/prometheus.log" 2>&1 &
track "$!"

query='sum(winsink_queries_total{decision="block"})'
got=""
for _ in $(seq 600); do
    got=$(curl -sf --get "http://127.0.0.1:$PROM/api/v1/query" --data-urlencode "query=$query" \
        | python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null || true)
    [[ $got == "$BLOCKED" ]] && break
    sleep 0.2
done
if [[ $got != "$BLOCKED" ]]; then
    tail -20 "$WORK/prometheus.log" >&2
    echo "Prometheus says $query = '$got', expected $BLOCKED" >&2
    exit 1
fi
echo "Prometheus: $query = $got (the $BLOCKED blocked queries sent)"
