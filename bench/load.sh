#!/usr/bin/env bash
# Side-by-side load benchmark: winsink and Unbound, each holding the same 1,000,000-name
# blocklist, measured with dnsperf on loopback.
#
#   bash bench/load.sh            # full run (about 3 minutes)
#   NAMES=100000 SECS=5 bash bench/load.sh   # quicker
#
# The server under test is pinned to CPU 0 and dnsperf to CPU 1. For each server and each
# path (sinkhole: names from the blocklist; cache: names answered by an upstream, asked
# again and again) it reports
#   - max QPS: dnsperf with many outstanding queries for SECS seconds;
#   - CPU per query at a fixed offered rate (RATE qps): the server's utime+stime from
#     /proc/PID/stat over the run, divided by the queries answered.
# One dnsperf saturates near 150k QPS on this machine, so CPU per query is the fairer
# figure. winsink runs with its query log on (JSON lines to a file).
#
# Measured on the 2-core development machine (release build, Unbound 1.17.1, dnsperf 2.10.0);
# the one place these figures are kept (crates/server/src/lib.rs points here):
# CPU per query at a fixed offered rate, 0 queries lost by winsink in every run:
#   SECS=8 bash bench/load.sh             sinkhole: winsink 15.06 us, Unbound 18.31 us (0.82x)
#                                         cache hit: winsink 13.94 us, Unbound 13.56 us (1.03x)
#   SECS=8 RATE=50000 bash bench/load.sh  sinkhole: winsink 6.98 us, Unbound 11.08 us (0.63x)
#                                         cache hit: winsink 6.45 us, Unbound 7.49 us (0.86x)
#   max QPS (one dnsperf): winsink 320k sinkhole / 285k cache; Unbound 157k / 296k
#   RSS holding the 1M names: winsink 100 MB, Unbound 460 MB
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=${NAMES:-1000000}
SECS=${SECS:-10}
RATE=${RATE:-20000}
. tests/lib.sh
need dnsperf unbound unbound-checkconf dig taskset python3
workdir winsink-bench

echo "# building winsink (release)" >&2
winsink_bin release

echo "# generating $NAMES blocklist names" >&2
python3 - "$WORK" "$NAMES" <<'PY'
import sys, random
work, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261125)
words = ["ads", "track", "metrics", "telemetry", "pixel", "beacon", "stats", "cdn", "log", "tag"]
tlds = ["com", "net", "org", "io", "info", "biz"]
names = set()
while len(names) < n:
    names.add(f"{rng.choice(words)}{rng.randrange(10**6)}.{rng.choice(words)}-{rng.randrange(10**4)}.{rng.choice(tlds)}")
names = sorted(names)
with open(f"{work}/blocklist.txt", "w") as f:
    f.write("# generated benchmark blocklist\n")
    for x in names:
        f.write(f"0.0.0.0 {x}\n")
with open(f"{work}/unbound-block.conf", "w") as f:
    for x in names:
        f.write(f'local-zone: "{x}." always_null\n')
sample = rng.sample(names, 20000)
with open(f"{work}/q-sinkhole.txt", "w") as f:
    for x in sample:
        f.write(f"{x} A\n")
with open(f"{work}/q-cache.txt", "w") as f:
    for i in range(200):
        f.write(f"host{i}.bench.test A\n")
with open(f"{work}/upstream.conf", "w") as f:
    f.write('local-zone: "bench.test." static\n')
    f.write('local-data: "ready.bench.test. 3600 IN A 192.0.2.1"\n')
    for i in range(200):
        f.write(f'local-data: "host{i}.bench.test. 3600 IN A 192.0.2.{i % 250 + 1}"\n')
PY

bench_unbound_conf() { # $1 port, $2 extra include, $3 forward port (optional)
    unbound_conf "$1"
    cat <<CONF
    verbosity: 0
    num-threads: 1
    # Unbound answers RFC 6761's test. itself by default; the bench zone lives under it.
    local-zone: "test." nodefault
    do-not-query-localhost: no
    msg-cache-size: 64m
    rrset-cache-size: 128m
    include: "$2"
CONF
    if [ -n "${3:-}" ]; then
        printf 'forward-zone:\n    name: "."\n    forward-addr: 127.0.0.1@%s\n' "$3"
    fi
}

UP_PORT=$(free_port)
bench_unbound_conf "$UP_PORT" "$WORK/upstream.conf" > "$WORK/up.conf"
start_unbound "$WORK/up.conf" "$UP_PORT" ready.bench.test taskset -c 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

# run_dnsperf LABEL PID PORT QUERYFILE
measure() {
    local label=$1 pid=$2 port=$3 qfile=$4
    # warm: fill caches
    taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$qfile" -n 1 -q 100 >/dev/null 2>&1 || true
    local maxq
    maxq=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$qfile" -l "$SECS" -c 8 -q 1000 2>&1 \
        | awk '/Queries per second/ {print $4}')
    local t0 t1 out done lost
    t0=$(cpu_ticks "$pid")
    out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$qfile" -l "$SECS" -Q "$RATE" -c 4 -q 500 2>&1)
    t1=$(cpu_ticks "$pid")
    done=$(awk '/Queries completed/ {print $3}' <<<"$out")
    lost=$(awk '/Queries lost/ {print $3}' <<<"$out")
    rcodes=$(awk '/Response codes/ {sub(/.*Response codes: */, ""); print}' <<<"$out")
    python3 - "$label" "$maxq" "$done" "$lost" "$t0" "$t1" "$TCK" "$rcodes" <<'PY'
import sys
label, maxq, done, lost, t0, t1, tck, rcodes = sys.argv[1:]
done = int(done); cpu_s = (int(t1) - int(t0)) / int(tck)
print(f"{label:28s} max_qps={float(maxq):>10.0f}  at_rate: answered={done:>7d} lost={lost:>4s} "
      f"cpu={cpu_s:6.2f}s  cpu_per_query={cpu_s / max(done, 1) * 1e6:6.2f}us  [{rcodes}]")
PY
}

# --- Unbound under test -------------------------------------------------------------
U_PORT=$(free_port)
bench_unbound_conf "$U_PORT" "$WORK/unbound-block.conf" "$UP_PORT" > "$WORK/unbound.conf"
echo "# starting unbound with $NAMES local-zones" >&2
start_unbound "$WORK/unbound.conf" "$U_PORT" ready.bench.test taskset -c 0
U_PID=$UNBOUND_PID
echo "unbound RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$U_PID/status)"
measure "unbound sinkhole" "$U_PID" "$U_PORT" "$WORK/q-sinkhole.txt"
measure "unbound cache-hit" "$U_PID" "$U_PORT" "$WORK/q-cache.txt"
kill "$U_PID"; wait "$U_PID" 2>/dev/null || true

# --- winsink under test -------------------------------------------------------------
W_PORT=$(free_port)
# The query log goes to a folder of its own: winsink watches the config's folder for reloads.
mkdir -p "$WORK/log"
cat > "$WORK/winsink.toml" <<CONF
# The shipped catalog, its default toggles, plus the benchmark blocklist.
catalogs = ["$PWD/policies/windows11-enterprise.toml"]
default_action = "log"

[areas]
diagnostic-data = "block"

[[lists]]
path = "$WORK/blocklist.txt"
format = "hosts"
action = "block"
label = "bench-blocklist"

[server]
allow_clients = ["127.0.0.0/8"]

# The HTTP API is not what this measures: off, so no fixed port is bound.
[http]
listen = []

[log]
queries = "all"
format = "json"
file = "$WORK/log/queries.log"
CONF
echo "# starting winsink with $NAMES list entries" >&2
taskset -c 0 "$WINSINK" run --config "$WORK/winsink.toml" --listen "127.0.0.1:$W_PORT" \
    --upstream "udp://127.0.0.1:$UP_PORT" >"$WORK/winsink.out" 2>"$WORK/winsink.err" &
W_PID=$!; track "$W_PID"
wait_dns "$W_PORT" ready.bench.test 60
echo "winsink RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$W_PID/status)"
measure "winsink sinkhole (log on)" "$W_PID" "$W_PORT" "$WORK/q-sinkhole.txt"
measure "winsink cache-hit (log on)" "$W_PID" "$W_PORT" "$WORK/q-cache.txt"
echo "winsink query-log lines: $(wc -l <"$WORK/log/queries.log")"
