#!/usr/bin/env bash
# Side-by-side load benchmark: winsink and Unbound, each holding the same 1,000,000-name
# blocklist, measured with dnsperf on loopback.
#
#   bash bench/load.sh            # full run (about 14 minutes, the metrics part 9)
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
# on and off side by side (see "winsink under test" below). UNBOUND=0 skips Unbound's legs,
# ENCRYPTED=0 the DoT leg.
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
# Metrics on vs off (CPU per query at 20,000 qps; three winsinks "on", "off", "off2" asked in
# rotating order, 40 rounds of 3 s each over 4 generations of fresh processes, a warm-up
# round before each generation's; load average 0.8; see "winsink under test" below):
#   WINSINK=target/release/winsink NAMES=100000 SECS=3 ROUNDS=40 UNBOUND=0 ENCRYPTED=0 bash bench/load.sh
#       sinkhole  on 15.08 us, off 14.88 us, off2 14.75 us (medians of the segments);
#                 on vs off paired by round +2.3% (within 3%), 95% interval -0.4% to +5.0%;
#                 off2 vs off -1.1% (-2.2% to +1.3%); perf: the metrics code 1.83% of on's
#                 CPU samples (Ring::push 0.48%, Metrics::record 0.36%, TopK::offer 0.36%,
#                 Labels::slot 0.19%, the statistics task's reading 0.28%, the suffix check 0.14%)
#       cache hit on 14.28 us, off 14.05 us, off2 14.07 us; on vs off +1.5% (within 3%),
#                 95% interval -0.0% to +3.4%; off2 vs off -0.8% (-2.1% to +0.8%); perf:
#                 1.56% (Ring::push 0.59%, Metrics::record 0.58%, TopK::offer 0.17%)
#   The same run with ROUNDS=20 (one run earlier, load 0.8): sinkhole +2.6% (+0.1% to +5.5%),
#   cache +1.2% (-1.6% to +3.0%), perf 1.48% / 0.94%. An interval about 5 points wide is
#   what 40 rounds give on this machine: one segment's CPU per query varies by 5-8% (the
#   kernel's wake-ups of server and dnsperf are about half of the 15 us); the perf share
#   has no such noise and is the sharper figure of what counting costs.
#   The sinkhole figure is the worst case for the top-names sketch: 20,000 distinct names
#   asked in turn, five times its 4,096 entries, so every query evicts one. The history,
#   by the same perf share on the sinkhole path (one winsink, 20,000 qps for 20-30 s):
#   2.49% before this round's changes; 2.19% once the ring's writer stored names straight
#   from their bytes (Ring::push 0.72% -> 0.39%: a copy through a buffer on the stack cost a
#   store-forwarding stall a word); 1.93% once the statistics task read the ring in batches
#   of half of it instead of every 100 ms (TopK::offer 0.87% -> 0.55%: the sketches are cold
#   in the caches after the query path, and larger batches bring them in fewer times);
#   1.36-1.52% once the writer prefetched the next slot (the log line's timestamp store,
#   stalled behind the ring's stores to lines out of cache, 0.9% -> 0.1%). By the end-to-end
#   figure: +11.1% / +5.1% before the statistics task stopped allocating per entry, +5.6% /
#   +2.3% at the start of this round (10 rounds in one generation, medians of segments).
# DoT, sinkhole path, CPU per query at 10,000 qps (4 TLS connections; query log on, metrics
# off; load average about 12, one run, so the ratio is the figure):
#   NAMES=100000 SECS=4 bash bench/load.sh     (then with LEGS=1, a knob since retired)
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

# --- Unbound under test (UNBOUND=0 skips it) ------------------------------------------
if [[ ${UNBOUND:-1} == 1 ]]; then
    U_PORT=$(free_port)
    bench_unbound_conf "$U_PORT" "$WORK/unbound-block.conf" "$UP_PORT" > "$WORK/unbound.conf"
    echo "# starting unbound with $NAMES local-zones" >&2
    start_unbound "$WORK/unbound.conf" "$U_PORT" ready.bench.test taskset -c 0
    U_PID=$UNBOUND_PID
    echo "unbound RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$U_PID/status)"
    measure "unbound sinkhole" "$U_PID" "$U_PORT" "$WORK/q-sinkhole.txt"
    measure "unbound cache-hit" "$U_PID" "$U_PORT" "$WORK/q-cache.txt"
    kill "$U_PID"; wait "$U_PID" 2>/dev/null || true
fi

# --- winsink under test: metrics on and off -------------------------------------------
# Three winsinks at once, all pinned to CPU 0 and alike but for [http] listen: "on" serves
# /metrics and the API on a loopback port the kernel picks and counts every query (per-thread
# counters, the recent-queries ring, the statistics task that follows it); "off" and "off2"
# (`[http] listen = []`) create no counters at all: the query path skips the counting. For
# each path dnsperf asks them one at a time, SEG seconds at RATE qps each, in ROUNDS rounds
# whose order rotates (on off off2, off off2 on, off2 on off, ...) so that a drift in the
# machine's load falls on all three alike, after a warm-up round that is not counted. CPU
# per query of a segment: the server's run time over it (its threads'
# /proc/PID/task/*/schedstat, in ns) over the queries answered. The figure is the median
# over rounds of "on" against "off" in the same round (paired: the three segments of a
# round are a few seconds apart), with a distribution-free 95% interval of that median,
# and whether the whole interval is within 3%. The same figure for
# "off2" against "off" (two processes of one setting asked the same way: a fresh
# process's layout, hash keys and warm-up) shows what noise alone gives. The rounds are
# spread over GENS generations of three fresh processes: one process's memory layout can
# shift its CPU per query by several percent for its whole life (seen: the same build's
# "on" 9.7% above "off" in one pair of processes, 2-3% in the next), which rounds within
# one generation do not average out. Then, unless
# PERF=0, perf samples "on" (see profile below): the metrics code's share of its CPU.
SEG=${SEG:-3}
ROUNDS=${ROUNDS:-20}
GENS=${GENS:-4}
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

# start_winsink NAME: a fresh winsink, metrics on if NAME is "on"; its PID and port in
# W_PID[NAME] and W_PORT[NAME]. The query log goes to a folder of its own: winsink watches
# the config's folder for reloads.
declare -A W_PID W_PORT
start_winsink() {
    local name=$1 listen='[]'
    [[ $name == on ]] && listen='["127.0.0.1:0"]'
    mkdir -p "$WORK/log"
    winsink_config "$listen" "$WORK/log/queries-$name.log" > "$WORK/winsink-$name.toml"
    W_PORT[$name]=$(free_port)
    taskset -c 0 "$WINSINK" run --config "$WORK/winsink-$name.toml" --listen "127.0.0.1:${W_PORT[$name]}" \
        --upstream "udp://127.0.0.1:$UP_PORT" >"$WORK/winsink-$name.out" 2>"$WORK/winsink-$name.err" &
    W_PID[$name]=$!; track "${W_PID[$name]}"
    wait_dns "${W_PORT[$name]}" ready.bench.test 120
    if [[ $name == on ]]; then
        grep -q "http: serving /metrics" "$WORK/winsink-$name.err" \
            || { echo "metrics on, but no HTTP listener:" >&2; cat "$WORK/winsink-$name.err" >&2; exit 1; }
    elif grep -q "http: serving" "$WORK/winsink-$name.err"; then
        echo "metrics off, but an HTTP listener:" >&2; cat "$WORK/winsink-$name.err" >&2; exit 1
    fi
}

# run_ns PID: nanoseconds its threads have run.
run_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }

# segment NAME QUERYFILE: dnsperf at RATE qps for SEG seconds against winsink NAME; prints
# its CPU per query in ns and the queries lost.
segment() {
    local pid=${W_PID[$1]} port=${W_PORT[$1]} t0 t1 out
    t0=$(run_ns "$pid")
    out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$2" -l "$SEG" -Q "$RATE" -c 4 -q 500 2>&1)
    t1=$(run_ns "$pid")
    awk -v ns=$((t1 - t0)) '/Queries completed/ {done = $3} /Queries lost/ {lost = $3}
        END {printf "%.0f %d\n", ns / (done > 0 ? done : 1), lost}' <<<"$out"
}

# profile PATH: with perf installed and allowed (PERF=0 skips it), the share of "on"'s CPU
# samples in the metrics code (every function of winsink_server::metrics, and the
# Microsoft-suffix check the statistics task makes), sampled at 1999 Hz over PERF_SECS
# seconds at RATE qps. Sampling sees no run-to-run noise between processes, so it tells
# what the counting costs where the on/off difference cannot; code inlined into the
# query path's own functions (building the record) is not in it.
profile() {
    [[ ${PERF:-1} == 1 ]] && command -v perf >/dev/null || return 0
    local data="$WORK/perf-$1.data" secs=${PERF_SECS:-10}
    perf record -q -F 1999 -p "${W_PID[on]}" -o "$data" -- sleep "$((secs + 1))" >/dev/null 2>&1 &
    local rec=$!
    sleep 0.5
    SEG=$secs segment on "$WORK/q-$1.txt" >/dev/null
    wait "$rec" || { echo "  perf: no samples (perf_event_paranoid?)"; return 0; }
    perf report -i "$data" --no-children --sort sym --stdio -g none 2>/dev/null \
        | awk -v path="$1" '/^#/ || !/%/ {next} {gsub("%", "", $1)}
            /winsink_server::metrics::|DomainSuffixes::contains/ {m += $1; top = top sprintf(" %s %.2f%%,", $NF, $1)}
            END {printf "  perf, %s path: metrics code %.2f%% of on'"'"'s CPU samples:%s\n", path, m, top}' \
        | sed 's/winsink_server::metrics:://g; s/,$//'
}

# judge PATH: the figures of PATH's segments.
judge() {
    python3 - "$1" "$RATE" "$WORK/segments-$1.txt" <<'PY'
import math, statistics, sys
path, rate, results = sys.argv[1], sys.argv[2], sys.argv[3]
seg = {"on": [], "off": [], "off2": []}
rounds, lost = [], 0
for i, line in enumerate(open(results)):
    name, ns, n = line.split()
    if i % 3 == 0:
        rounds.append({})
    rounds[-1][name] = int(ns) / 1000
    seg[name].append(int(ns) / 1000)
    lost += int(n)
med = {k: statistics.median(v) for k, v in seg.items()}
def iqr(v):
    q = statistics.quantiles(v, n=4)
    return (q[2] - q[0]) / statistics.median(v) * 100
def paired(a, b):
    """Per round, a's CPU per query over b's (the three were asked one after another)."""
    return sorted((r[a] / r[b] - 1) * 100 for r in rounds)
def median_ci(x):
    """A distribution-free 95% interval of the median: order statistics k and n-1-k,
    k the largest with P(Binomial(n, 1/2) < k+1) <= 2.5%."""
    n, k, tail = len(x), 0, 0.0
    for j in range(n):
        tail += math.comb(n, j) / 2 ** n
        if tail > 0.025:
            break
        k = j + 1
    return (x[k], x[n - 1 - k]) if 0 < k < n - k else (x[0], x[-1])
on, aa = paired("on", "off"), paired("off2", "off")
lo, hi = median_ci(on)
aa_lo, aa_hi = median_ci(aa)
print(f"winsink {path} metrics on/off, CPU per query at {rate} qps, {len(rounds)} rounds, {lost} lost:")
for k in ("on", "off", "off2"):
    print(f"  {k:4s} median {med[k]:5.2f} us (IQR {iqr(seg[k]):4.1f}% of it): {' '.join(f'{x:.2f}' for x in seg[k])}")
diff = statistics.median(on)
verdict = "within 3%" if diff <= 3 else "ABOVE 3%"
spread = "all within 3%" if hi <= 3 else ("all above 3%" if lo > 3 else "reaching above 3%: more ROUNDS narrow it")
print(f"  on vs off, paired by round: median {diff:+.1f}% ({verdict}), 95% interval {lo:+.1f}% to {hi:+.1f}% ({spread})")
print(f"  off2 vs off (one setting twice, the noise): median {statistics.median(aa):+.1f}%, 95% interval {aa_lo:+.1f}% to {aa_hi:+.1f}%")
print(f"  medians of the segments: on vs off {(med['on'] / med['off'] - 1) * 100:+.1f}%, off2 vs off {(med['off2'] / med['off'] - 1) * 100:+.1f}%")
PY
}

# stop_winsinks: the three stopped.
stop_winsinks() {
    for name in on off off2; do kill "${W_PID[$name]}"; wait "${W_PID[$name]}" 2>/dev/null || true; done
}

echo "# starting three winsinks (metrics on, off, off) with $NAMES list entries" >&2
for name in on off off2; do start_winsink "$name"; done
echo "winsink RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/${W_PID[on]}/status") (metrics on)," \
    "$(awk '/VmRSS/ {print $2, $3}' "/proc/${W_PID[off]}/status") (off)"
measure "winsink sinkhole (log on, metrics on)" "${W_PID[on]}" "${W_PORT[on]}" "$WORK/q-sinkhole.txt"
measure "winsink cache-hit (log on, metrics on)" "${W_PID[on]}" "${W_PORT[on]}" "$WORK/q-cache.txt"
ORDER=(on off off2)
: >"$WORK/segments-sinkhole.txt"; : >"$WORK/segments-cache.txt"
PER_GEN=$(((ROUNDS + GENS - 1) / GENS))
for gen in $(seq 1 "$GENS"); do
    if ((gen > 1)); then
        echo "# generation $gen: three fresh winsinks" >&2
        stop_winsinks
        for name in on off off2; do start_winsink "$name"; done
    fi
    for path in sinkhole cache; do
        echo "# metrics on/off, $path path: $PER_GEN rounds of 3 x $SEG s at $RATE qps, after one not counted" >&2
        for round in $(seq 0 "$PER_GEN"); do
            for i in 0 1 2; do
                name=${ORDER[$(((round + i) % 3))]}
                # Every process warms its cache (the cache path's 200 names) in round 0.
                read -r ns lost < <(segment "$name" "$WORK/q-$path.txt")
                [[ $round == 0 ]] || echo "$name $ns $lost" >>"$WORK/segments-$path.txt"
            done
        done
    done
done
for path in sinkhole cache; do
    judge "$path"
    profile "$path"
done
stop_winsinks
echo "winsink query-log lines (metrics on): $(wc -l <"$WORK/log/queries-on.log")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

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
