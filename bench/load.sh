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
# figure. winsink runs with its query log on (JSON lines to a file), and with its metrics
# on and off in alternating legs (see "winsink under test" below).
# The last leg (ENCRYPTED=0 skips it) asks the sinkhole path over DoT (dnsperf -m dot, 4
# connections) at ENC_RATE qps: winsink's listen_tls against Unbound's tls-port
# (tls-service-key/pem), with the same blocklist and one certificate (a lab CA and a server
# certificate made with openssl as the README's recipe makes them). DOH=1 adds DoH
# (dnsperf -m doh, HTTP/2 POST) against Unbound's https-port; it is off by default because
# dnsperf 2.10's DoH client loses answers when two streams' HTTP/2 frames interleave on one
# connection, which winsink's multi-threaded listener does (observed: 10 of 22 queries lost
# at -q 10 with two runtime threads, none with TOKIO_WORKER_THREADS=1; kdig and curl get
# every answer, tests/encrypted_listen.rs).
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
# Metrics on vs off (CPU per query at 20,000 qps, legs on/off/on/off, load average 13-14):
#   NAMES=100000 SECS=10 LEGS=2 bash bench/load.sh
#       sinkhole  on 10.10 9.55 us, off 9.20 9.60 us: +4.5% (same-setting spread 5.6%)
#       cache hit on 9.00 9.20 us, off 8.70 8.75 us: +4.3% (same-setting spread 2.2%)
#   Before the statistics task's top-k sketch stopped hashing on every heap move, the same
#   run gave +23.9% for the sinkhole path (20,000 distinct names, far more than the
#   sketch's 4,096, so every query evicted) and +5.0% for the cache path.
# DoT, sinkhole path, CPU per query at 10,000 qps (4 TLS connections; query log on, metrics
# off; load average about 12, one run, so the ratio is the figure):
#   NAMES=100000 SECS=4 LEGS=1 bash bench/load.sh
#       winsink 29.75 us, Unbound 31.00 us (0.96x); max QPS (one dnsperf, 8 connections):
#       winsink 39.0k, Unbound 15.2k; 0 lost by either. (Unbound's DoH in the same run:
#       32.25 us, 12.1k max QPS.)
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=${NAMES:-1000000}
SECS=${SECS:-10}
RATE=${RATE:-20000}
. tests/lib.sh
need dnsperf unbound unbound-checkconf dig taskset python3 openssl
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

# The transport of at_rate and measure: MODE=dot|doh (default udp); DOH_URI for doh (POST).
via() {
    VIA=(-m "${MODE:-udp}")
    [[ -z ${DOH_URI:-} ]] || VIA+=(-O "doh-uri=$DOH_URI" -O doh-method=POST)
}

# at_rate LABEL PID PORT QUERYFILE: dnsperf at RATE qps for SECS seconds; prints the line and
# keeps the CPU per query (us) in $CPU_US.
at_rate() {
    local label=$1 pid=$2 port=$3 qfile=$4 maxq=${5:-}
    via
    local t0 t1 out done lost rcodes
    t0=$(cpu_ticks "$pid")
    out=$(taskset -c 1 dnsperf "${VIA[@]}" -s 127.0.0.1 -p "$port" -d "$qfile" -l "$SECS" -Q "$RATE" -c 4 -q 500 2>&1)
    t1=$(cpu_ticks "$pid")
    done=$(awk '/Queries completed/ {print $3}' <<<"$out")
    lost=$(awk '/Queries lost/ {print $3}' <<<"$out")
    rcodes=$(awk '/Response codes/ {sub(/.*Response codes: */, ""); print}' <<<"$out")
    local res
    res=$(python3 - "$label" "$maxq" "$done" "$lost" "$t0" "$t1" "$TCK" "$rcodes" <<'PY'
import sys
label, maxq, done, lost, t0, t1, tck, rcodes = sys.argv[1:]
done = int(done); cpu_s = (int(t1) - int(t0)) / int(tck)
us = cpu_s / max(done, 1) * 1e6
maxq = f"max_qps={float(maxq):>10.0f}  " if maxq else ""
print(f"{us:.3f}\t{label:34s} {maxq}at_rate: answered={done:>7d} lost={lost:>4s} "
      f"cpu={cpu_s:6.2f}s  cpu_per_query={us:6.2f}us  [{rcodes}]")
PY
)
    CPU_US=${res%%$'\t'*}
    echo "${res#*$'\t'}"
}

# measure LABEL PID PORT QUERYFILE: warm the caches, max QPS, then at_rate.
measure() {
    local label=$1 pid=$2 port=$3 qfile=$4
    via
    # warm: fill caches
    taskset -c 1 dnsperf "${VIA[@]}" -s 127.0.0.1 -p "$port" -d "$qfile" -n 1 -q 100 >/dev/null 2>&1 || true
    local maxq
    maxq=$(taskset -c 1 dnsperf "${VIA[@]}" -s 127.0.0.1 -p "$port" -d "$qfile" -l "$SECS" -c 8 -q 1000 2>&1 \
        | awk '/Queries per second/ {print $4}')
    at_rate "$label" "$pid" "$port" "$qfile" "$maxq"
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
# Metrics on and off, in alternating legs (on, off, on, off; LEGS=N for more pairs), each a
# fresh winsink: "on" serves /metrics and the API on a loopback port the kernel picks, and
# counts every query (per-thread counters, the recent-queries ring, the statistics task
# that follows it); "off" (`[http] listen = []`) creates no counters at all: the query path
# skips the counting, so the difference between the two is what counting costs. The
# spread between legs of the same setting is the noise the difference is judged against.
LEGS=${LEGS:-2}
# winsink_config HTTP_LISTEN LOGFILE
winsink_config() {
    cat <<CONF
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

[http]
listen = $1

[log]
queries = "all"
format = "json"
file = "$2"
CONF
}

# start_winsink on|off LEG: W_PID and W_PORT of a fresh winsink. The query log goes to a
# folder of its own: winsink watches the config's folder for reloads.
start_winsink() {
    local metrics=$1 leg=$2 listen='[]'
    [[ $metrics == on ]] && listen='["127.0.0.1:0"]'
    mkdir -p "$WORK/log"
    winsink_config "$listen" "$WORK/log/queries-$leg.log" > "$WORK/winsink-$leg.toml"
    W_PORT=$(free_port)
    taskset -c 0 "$WINSINK" run --config "$WORK/winsink-$leg.toml" --listen "127.0.0.1:$W_PORT" \
        --upstream "udp://127.0.0.1:$UP_PORT" >"$WORK/winsink-$leg.out" 2>"$WORK/winsink-$leg.err" &
    W_PID=$!; track "$W_PID"
    wait_dns "$W_PORT" ready.bench.test 60
    if [[ $metrics == on ]]; then
        grep -q "http: serving /metrics" "$WORK/winsink-$leg.err" \
            || { echo "metrics on, but no HTTP listener:" >&2; cat "$WORK/winsink-$leg.err" >&2; exit 1; }
    elif grep -q "http: serving" "$WORK/winsink-$leg.err"; then
        echo "metrics off, but an HTTP listener:" >&2; cat "$WORK/winsink-$leg.err" >&2; exit 1
    fi
}

echo "# starting winsink with $NAMES list entries" >&2
declare -A CPU
leg=0
for pair in $(seq 1 "$LEGS"); do
    for metrics in on off; do
        leg=$((leg + 1))
        start_winsink "$metrics" "$leg"
        if [[ $leg == 1 ]]; then
            echo "winsink RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$W_PID/status)"
            measure "winsink sinkhole (log on)" "$W_PID" "$W_PORT" "$WORK/q-sinkhole.txt"
            measure "winsink cache-hit (log on)" "$W_PID" "$W_PORT" "$WORK/q-cache.txt"
        else
            # Warm the cache as measure does.
            taskset -c 1 dnsperf -s 127.0.0.1 -p "$W_PORT" -d "$WORK/q-cache.txt" -n 1 -q 100 \
                >/dev/null 2>&1 || true
        fi
        for path in sinkhole cache; do
            at_rate "winsink $path metrics $metrics (leg $leg)" "$W_PID" "$W_PORT" "$WORK/q-$path.txt"
            CPU[$path-$metrics]+="$CPU_US "
        done
        kill "$W_PID"; wait "$W_PID" 2>/dev/null || true
    done
done
echo "winsink query-log lines (leg 1): $(wc -l <"$WORK/log/queries-1.log")"
python3 - "$RATE" "${CPU[sinkhole-on]}" "${CPU[sinkhole-off]}" "${CPU[cache-on]}" "${CPU[cache-off]}" <<'PY'
import sys
rate = sys.argv[1]
print(f"metrics on vs off, CPU per query at {rate} qps (legs alternate on, off, on, off, ...):")
for path, on, off in [("sinkhole", sys.argv[2], sys.argv[3]), ("cache-hit", sys.argv[4], sys.argv[5])]:
    on, off = [float(x) for x in on.split()], [float(x) for x in off.split()]
    mon, moff = sum(on) / len(on), sum(off) / len(off)
    spread = max((max(v) - min(v)) / (sum(v) / len(v)) for v in (on, off)) * 100
    print(f"  {path:9s} on {' '.join(f'{x:.2f}' for x in on)} us (mean {mon:.2f}), "
          f"off {' '.join(f'{x:.2f}' for x in off)} us (mean {moff:.2f}): "
          f"on/off {(mon / moff - 1) * 100:+.1f}%, spread between legs of one setting {spread:.1f}%")
PY

# --- DoT and DoH: winsink's listeners against Unbound's, the same blocklist ---------
[[ ${ENCRYPTED:-1} == 1 ]] || exit 0
RATE=${ENC_RATE:-10000}
echo "# a lab CA and a server certificate for the DoT/DoH leg" >&2
mkdir -p "$WORK/tls"
(
    cd "$WORK/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=bench lab CA" -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=dns.bench.test" \
        -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:dns.bench.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext.cnf -out server.pem 2>/dev/null
)
# encrypted LABEL PID TLS_PORT HTTPS_PORT: the sinkhole path over DoT (then DoH, DOH=1).
encrypted() {
    MODE=dot measure "$1 sinkhole dot" "$2" "$3" "$WORK/q-sinkhole.txt"
    [[ ${DOH:-0} == 1 ]] || return 0
    MODE=doh DOH_URI="https://127.0.0.1:$4/dns-query" \
        measure "$1 sinkhole doh" "$2" "$4" "$WORK/q-sinkhole.txt"
}

U_PORT=$(free_port); U_TLS=$(free_port); U_HTTPS=$(free_port)
{
    bench_unbound_conf "$U_PORT" "$WORK/unbound-block.conf"
    cat <<CONF
    interface: 127.0.0.1@$U_TLS
    interface: 127.0.0.1@$U_HTTPS
    tls-port: $U_TLS
    https-port: $U_HTTPS
    http-endpoint: "/dns-query"
    tls-service-key: "$WORK/tls/server.key"
    tls-service-pem: "$WORK/tls/server.pem"
CONF
} >"$WORK/unbound-enc.conf"
echo "# starting unbound with DoT and DoH" >&2
start_unbound "$WORK/unbound-enc.conf" "$U_PORT" ready.bench.test taskset -c 0
U_PID=$UNBOUND_PID
encrypted unbound "$U_PID" "$U_TLS" "$U_HTTPS"
kill "$U_PID"; wait "$U_PID" 2>/dev/null || true

W_PORT=$(free_port); W_TLS=$(free_port); W_HTTPS=$(free_port)
winsink_config '[]' "$WORK/log/queries-enc.log" \
    | sed "/^\[server\]/a listen_tls = [\"127.0.0.1:$W_TLS\"]\nlisten_https = [\"127.0.0.1:$W_HTTPS\"]" \
    >"$WORK/winsink-enc.toml"
printf '\n[tls]\ncert_file = "%s"\nkey_file = "%s"\n' "$WORK/tls/server.pem" "$WORK/tls/server.key" \
    >>"$WORK/winsink-enc.toml"
echo "# starting winsink with DoT and DoH" >&2
taskset -c 0 "$WINSINK" run --config "$WORK/winsink-enc.toml" --listen "127.0.0.1:$W_PORT" \
    --upstream "udp://127.0.0.1:$UP_PORT" >"$WORK/winsink-enc.out" 2>"$WORK/winsink-enc.err" &
W_PID=$!; track "$W_PID"
wait_dns "$W_PORT" ready.bench.test 60
encrypted "winsink (log on, metrics off)" "$W_PID" "$W_TLS" "$W_HTTPS"
echo "winsink query-log lines (DoT and DoH): $(wc -l <"$WORK/log/queries-enc.log")"
