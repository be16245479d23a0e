#!/usr/bin/env bash
# Reloads under load: winsink answers a steady dnsperf stream while its config file is
# edited RELOADS times (microsoft-store flipped between log and block, each edit saved
# the way editors save: write a temporary file, rename it over the config). The run is
# bounded to SECS seconds of load. Pass: every reload is logged and dnsperf reports zero
# lost queries and no SERVFAIL.
#
#   bash bench/reload-under-load.sh                      # 100 reloads, 2000 qps, 60 s
#   RELOADS=20 RATE=5000 SECS=20 bash bench/reload-under-load.sh
#
# Upstream: Unbound on loopback with a local zone (nothing leaves the machine).
# winsink runs with its query log on (JSON lines to a file).
#
# Measured on the 2-core development machine (release build): 100 reloads in 29 s (each
# waits for the previous one's log line; the 250 ms debounce sets the pace) while dnsperf
# offered 2000 qps for 60 s: 120,000 sent, 120,000 completed, 0 lost, no SERVFAIL, mean
# latency 0.11 ms; at 20,000 qps for 40 s: 800,000 sent, 0 lost, mean latency 0.29 ms.
set -euo pipefail
cd "$(dirname "$0")/.."

RELOADS=${RELOADS:-100}
RATE=${RATE:-2000}
SECS=${SECS:-60}

. tests/lib.sh
need dnsperf unbound unbound-checkconf dig python3
workdir winsink-reload-bench

echo "# building winsink (release)" >&2
winsink_bin release

UPORT=$(free_port)
{
    unbound_conf "$UPORT" "$WORK/unbound.log"
    cat <<EOF
    local-zone: "." refuse
    local-zone: "lab.test." static
    local-data: "lab.test. 300 IN SOA ns.lab.test. admin.lab.test. 1 3600 600 86400 300"
    local-data: "www.lab.test. 300 IN A 192.0.2.10"
    local-zone: "windows.com." static
    local-data: "x.wns.windows.com. 300 IN A 192.0.2.53"
    local-data: "x.wns.windows.com. 300 IN AAAA 2001:db8::53"
EOF
} >"$WORK/unbound.conf"
start_unbound "$WORK/unbound.conf" "$UPORT" www.lab.test

PORT=$(free_port)
CONFIG="$WORK/winsink.toml"
write_config() { # $1: the action of microsoft-store
    cat >"$WORK/.winsink.toml.tmp" <<EOF
default_action = "log"
[areas]
diagnostic-data = "block"
microsoft-store = "$1"
[server]
listen = ["127.0.0.1:$PORT"]
upstreams = ["udp://127.0.0.1:$UPORT"]
[http]
listen = []
[log]
queries = "all"
format = "json"
file = "queries.log"
EOF
    mv "$WORK/.winsink.toml.tmp" "$CONFIG"
}
write_config log
"$WINSINK" run --config "$CONFIG" >"$WORK/winsink.out" 2>"$WORK/winsink.err" &
WINSINK_PID=$!
track "$WINSINK_PID"
wait_dns "$PORT" www.lab.test

# Blocked, forwarded, flipped and NXDOMAIN names, A and AAAA.
printf '%s\n' "x.wns.windows.com A" "x.wns.windows.com AAAA" "www.lab.test A" \
    "watson.events.data.microsoft.com A" "nope.lab.test A" "X.Wns.Windows.Com A" >"$WORK/queries.txt"

echo "# dnsperf: $RATE qps for $SECS s against 127.0.0.1:$PORT; $RELOADS reloads meanwhile" >&2
dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries.txt" -Q "$RATE" -l "$SECS" -t 2 -q 200 \
    >"$WORK/dnsperf.out" 2>&1 &
PERF=$!
track "$PERF"
sleep 1

reloads_logged() { grep -c 'reloaded' "$WORK/winsink.err" || true; }
started=$(date +%s.%N)
done_reloads=0
action=log
for i in $(seq 1 "$RELOADS"); do
    kill -0 "$PERF" 2>/dev/null || break
    if [[ $action == log ]]; then action=block; else action=log; fi
    before=$(reloads_logged)
    write_config "$action"
    # Wait for this reload to be logged before the next edit, so that edits are not
    # merged by the debounce: each one is a reload of its own.
    for _ in $(seq 1 100); do
        [[ $(reloads_logged) -gt $before ]] && break
        sleep 0.05
    done
    done_reloads=$i
done
elapsed=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
wait "$PERF" || true

sent=$(awk '/Queries sent:/{print $3}' "$WORK/dnsperf.out")
completed=$(awk '/Queries completed:/{print $3}' "$WORK/dnsperf.out")
lost=$(awk '/Queries lost:/{print $3}' "$WORK/dnsperf.out")
codes=$(grep -E 'Response codes:' "$WORK/dnsperf.out" | sed 's/^ *Response codes: *//' || true)
qps=$(awk '/Queries per second:/{print $4}' "$WORK/dnsperf.out")
avg=$(grep -E 'Average Latency' "$WORK/dnsperf.out" | sed 's/^ *//' || true)
logged=$(reloads_logged)
failed=$(grep -c 'reload failed' "$WORK/winsink.err" || true)
servfail=$(grep -Eo 'SERVFAIL [0-9]+' <<<"$codes" | awk '{print $2}' || true)

echo "reloads: $done_reloads edits in ${elapsed}s, $logged reloads logged, $failed failed"
echo "dnsperf: sent $sent, completed $completed, lost $lost, ${qps} qps"
echo "response codes: $codes"
echo "$avg"
if ! kill -0 "$WINSINK_PID" 2>/dev/null; then
    echo "FAIL: winsink exited"; exit 1
fi
if [[ "$lost" != 0 || -n "$servfail" || "$logged" -lt "$done_reloads" || "$done_reloads" -lt "$RELOADS" ]]; then
    echo "FAIL"
    exit 1
fi
echo "PASS: $RELOADS reloads under $RATE qps, zero lost or failed queries"
