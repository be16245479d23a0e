#!/usr/bin/env bash
# Memory and start-up, side by side: winsink, dnsmasq and Unbound each holding the same
# generated blocklist of SIZES names (default 100k, 1M and 5M distinct names), query log on.
#
#   bash bench/memory.sh                          # the full table (several minutes)
#   SIZES="100000 1000000" bash bench/memory.sh   # quicker
#   RELOAD=0 bash bench/memory.sh                 # without the reload leg
#   SERVERS="winsink" bash bench/memory.sh        # one server only (while working on it)
#
# For each size and server, started alone on a free loopback port:
#   - ready: from the exec to the first answer of 0.0.0.0 for the list's last name (polled
#     every 5 ms with a small UDP client, so the list is known to be loaded);
#   - RSS: VmRSS from /proc/PID/status 2 s after ready; peak: VmHWM (the high-water mark,
#     which includes the load's transient peak).
# The list is the same names in each server's blocklist form:
#   - winsink: a hosts file (`0.0.0.0 name`), `format = "hosts"`, with the built-in catalog;
#   - dnsmasq: the same hosts file through `addn-hosts=` (the form Pi-hole fed dnsmasq its
#     gravity list in, and an exact-name match like winsink's hosts lists; `address=/name/`
#     also blocks every name below and is slower to load);
#   - Unbound: `local-zone: "name." always_null` (its blocklist form).
# Each logs every query to a file (winsink `[log] queries = "all"`, dnsmasq `log-queries`,
# Unbound `log-queries: yes`).
#
# The reload leg (RELOAD_SIZE names, default 1M): winsink under a light dnsperf load
# (RELOAD_QPS) while its list is rewritten RELOADS times (temp file + rename, one name
# changed each time); /proc/PID/status is sampled every 10 ms. It reports the steady RSS
# (before the load), then for each reload the RSS under load just before it, the most
# RSS held during it and the RSS a few seconds after, against "old + new": the RSS just
# before plus the policy's own size (steady RSS minus the RSS of winsink with the
# catalog only). Serving the load itself holds 1-2 MB more than the steady RSS, hence
# the RSS just before as the base. A third copy of the policy, or the build's tables
# beside the new policy, would show above that line.
#
# Names: registrable domains (a label of 4-14 characters under a weighted mix of TLDs,
# two-label ones like co.uk included), one per five names, with a skewed number of names
# each: 10% bare, 40% a common word in front (ads., metrics., ...), 40% a random token of
# 3-12 characters, 10% a token and a word. Deterministic (seeded), mean length 20
# octets, as in published lists. Generated once per size and kept in $CACHE_DIR.
#
# Figures are ratios from one run on a machine shared with other builds (the one place
# they are kept; crates/server/src/memory.rs and the matcher's docs point here).
# Measured (release build, dnsmasq 2.90, Unbound 1.17.1), 1,000,000 names:
#   before (edcfdd5, http off): winsink RSS 116.9 MB, peak 160.6 MB, ready 3.0 s; dnsmasq 115.1 MB,
#     ready 17.6 s; Unbound 433.6 MB, ready 24.1 s (load average ~11)
#   glibc tuned (fixed mmap threshold, malloc_trim after loads): winsink RSS 86.9 MB,
#     peak 160.5 MB; a reload holds 242 MB at most (old + a whole build), 88 MB 3 s after
#   patterns straight into the trie, list files read line by line: RSS 87.9 MB, peak
#     132.3 MB, ready 1.06 s (was 4.1 s); a reload holds 214 MB at most, 89.5 MB 3 s after
#   list entries in 8 bytes besides their text: RSS 81.6 MB, peak 124.9 MB; a reload
#     held 200 MB at most (old + new 148.2 MB: the new policy's build tables beside the old)
#   trie built straight into its final table, sized by a first pass (HyperLogLog count of
#     the suffixes), reload fingerprint hashed in pieces: RSS 82.6 MB, peak 82.6 MB (the
#     load's peak is its final RSS), ready 0.57-0.68 s in three runs (0.74 s before)
# The table, one run of `RELOADS=3 bash bench/memory.sh` (83e00da, load average 0.9-1.0;
# ready times are comparable within a row):
#   names      server        RSS MB    peak MB  ready ms  RSS/dnsmasq
#   100000     winsink         22.9       22.9       118         1.44
#   100000     dnsmasq         15.8       15.8       155         1.00
#   100000     unbound         54.1       54.1       305         3.42
#   1000000    winsink         81.9       81.9       650         0.71
#   1000000    dnsmasq        115.2      115.2      3158         1.00
#   1000000    unbound        433.6      433.6      2922         3.76
#   5000000    winsink        345.2      345.2      3246         0.62
#   5000000    dnsmasq        555.9      555.9     23138         1.00
#   5000000    unbound       2120.2     2120.2     21594         3.81
#   winsink grows 66 MB per million names (100k→1M and 1M→5M alike) over a 16 MB base.
#   Reload of 1M names under 2000 qps in the same run (0 lost): steady 82.7 MB, policy
#   66.9 MB; RSS under load before each reload 83.3 / 84.0 / 84.7 MB, so old + new
#   150.3 / 150.9 / 151.6 MB; most held 150.6 / 151.3 / 151.9 MB (0.3-0.4 MB above, 0.5%
#   of one policy; before the trie was built in its final table: 200.7 MB held against
#   148.5 MB, +52 MB), 84.0 / 84.7 / 85.0 MB 3 s after.
#   Ten reloads (`SIZES=100000 SERVERS=winsink RELOADS=10 bash bench/memory.sh`, load ~0.8):
#   the RSS between reloads levels off at 84.4-84.5 MB from the fifth (what serving the
#   load touches: 3 MB over the steady figure, taken before the load), and each reload
#   holds 0.7-1.1 MB over old + new (1-2% of one policy, where a third copy would be
#   100%): transient working state of the reload, not yet pinned down (heaptrack on
#   `winsink check` sees the build's heap peak at exactly the policy it returns).
#   With `queries = "none"` four reloads held 150.2 / 150.0 / 149.7 / 149.9 MB against
#   149.8 / 149.8 / 150.1 / 150.0 MB (35c27a6).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"100000 1000000 5000000"}
SERVERS=${SERVERS:-"winsink dnsmasq unbound"}
RELOAD=${RELOAD:-1}
RELOAD_SIZE=${RELOAD_SIZE:-1000000}
RELOADS=${RELOADS:-3}
RELOAD_QPS=${RELOAD_QPS:-2000}
SETTLE=${SETTLE:-2}
CACHE_DIR=${CACHE_DIR:-/tmp/winsink-memory-lists}

for tool in python3 dnsperf; do
    command -v "$tool" >/dev/null || { echo "bench/memory.sh needs $tool" >&2; exit 2; }
done
for s in $SERVERS; do
    case $s in
        winsink) ;;
        dnsmasq|unbound) command -v "$s" >/dev/null || PATH=$PATH:/usr/sbin
            command -v "$s" >/dev/null || { echo "bench/memory.sh needs $s (apt-get install dnsmasq-base unbound)" >&2; exit 2; } ;;
        *) echo "unknown server $s" >&2; exit 2 ;;
    esac
done

WORK=$(mktemp -d /tmp/winsink-memory.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "# building winsink (release)" >&2
cargo build -q --release -p winsink-cli
WINSINK=$(realpath "${CARGO_TARGET_DIR:-target}/release/winsink")

free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- helpers (python) ---------------------------------------------------------------
cat >"$WORK/gen.py" <<'PY'
"""gen.py N DIR: N distinct blocklist names, deterministic, in each server's form."""
import os, random, sys

n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(20261201 + n)
alnum = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
tlds = ["com"] * 8 + ["net"] * 3 + ["org"] * 2 + ["io", "de", "ru", "info", "xyz", "co.uk",
        "com.br", "fr", "nl", "jp", "cn", "top", "biz", "online", "site", "tv", "me", "app"]
words = ["ads", "ad", "tracker", "track", "metrics", "stats", "pixel", "cdn", "static", "img",
         "api", "www", "log", "logs", "t", "s", "collect", "analytics", "events", "telemetry",
         "beacon", "m"]

def label(lo, hi):
    k = rng.randint(lo, hi)
    s = "".join(rng.choice(alnum) for _ in range(k))
    if k > 4 and rng.random() < 0.25:
        s = s[: k // 2] + "-" + s[k // 2 + 1 :]
    return s

domains = [f"{label(4, 14)}.{rng.choice(tlds)}" for _ in range(max(n // 5, 1))]
seen, names = set(), []
while len(names) < n:
    r = rng.random()
    d = domains[int(r * r * len(domains))]  # skewed: a few big trackers, a long tail
    k = rng.random()
    if k < 0.1:
        name = d
    elif k < 0.5:
        name = f"{rng.choice(words)}.{d}"
    elif k < 0.9:
        name = f"{label(3, 12)}.{d}"
    else:
        name = f"{label(2, 8)}.{rng.choice(words)}.{d}"
    if name not in seen:
        seen.add(name)
        names.append(name)
os.makedirs(out, exist_ok=True)
with open(f"{out}/hosts.tmp", "w") as f:
    f.write("# generated benchmark blocklist\n")
    f.writelines(f"0.0.0.0 {x}\n" for x in names)
with open(f"{out}/unbound.tmp", "w") as f:
    f.writelines(f'local-zone: "{x}." always_null\n' for x in names)
with open(f"{out}/queries.tmp", "w") as f:
    f.writelines(f"{x} A\n" for x in rng.sample(names, min(n, 20000)))
with open(f"{out}/last.tmp", "w") as f:
    f.write(names[-1] + "\n")
for part in ["hosts", "unbound", "queries", "last"]:
    os.rename(f"{out}/{part}.tmp", f"{out}/{part}.txt")
PY

cat >"$WORK/ready.py" <<'PY'
"""ready.py PORT NAME T0_NS PID: ms from T0 until NAME is answered with 0.0.0.0."""
import os, socket, struct, sys, time

port, name, t0, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
q = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.005)
deadline = time.monotonic() + 900
i = 0
while time.monotonic() < deadline:
    if not os.path.exists(f"/proc/{pid}"):
        sys.exit(f"server {pid} exited before answering")
    i = (i + 1) & 0xFFFF
    s.sendto(struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", 1, 1),
             ("127.0.0.1", port))
    try:
        while True:
            r = s.recv(4096)
            rid, flags, _, an = struct.unpack(">HHHH", r[:8])
            if rid == i and flags & 0xF == 0 and an >= 1 and r[-4:] == b"\0\0\0\0":
                print(f"{(time.time_ns() - t0) / 1e6:.0f}")
                sys.exit(0)
    except socket.timeout:
        pass
sys.exit("no answer")
PY

cat >"$WORK/sample.py" <<'PY'
"""sample.py PID LOG N: samples VmRSS every 10 ms until LOG holds N `reloaded:` lines,
then 3 s more; prints the most RSS seen and the last sample, in kB."""
import sys, time

pid, log, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
def rss():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
def reloads():
    with open(log, errors="replace") as f:
        return f.read().count("reloaded:")
peak, deadline = 0, time.monotonic() + 120
while reloads() < want:
    if time.monotonic() > deadline:
        sys.exit(f"no reload logged in {log}")
    peak = max(peak, rss())
    time.sleep(0.01)
until = time.monotonic() + 3
while time.monotonic() < until:
    peak = max(peak, rss())
    time.sleep(0.01)
print(peak, rss())
PY

# The name whose 0.0.0.0 answer says the list is loaded: its last (a catalog name without one).
ready_name() {
    if [ "$1" -gt 0 ]; then cat "$CACHE_DIR/$1/last.txt"; else echo watson.events.data.microsoft.com; fi
}
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f", kb / 1024}'; }

# --- servers ------------------------------------------------------------------------
# start_SERVER SIZE PORT DIR: starts it in the background; sets PID.
start_winsink() {
    local n=$1 port=$2 dir=$3
    mkdir -p "$dir/lists" "$dir/log"
    [ "$n" -gt 0 ] && cp "$CACHE_DIR/$n/hosts.txt" "$dir/lists/hosts.txt"
    {
        echo 'catalogs = ["builtin:windows11-enterprise"]'
        echo 'default_action = "log"'
        echo '[areas]'
        echo 'diagnostic-data = "block"'
        if [ "$n" -gt 0 ]; then
            printf '[[lists]]\npath = "lists/hosts.txt"\nformat = "hosts"\naction = "block"\nlabel = "bench"\n'
        fi
        echo '[server]'
        echo 'allow_clients = ["127.0.0.0/8"]'
        echo '[log]'
        echo 'queries = "all"'
        echo 'format = "json"'
        echo "file = \"$dir/log/queries.log\""
    } >"$dir/winsink.toml"
    "$WINSINK" run --config "$dir/winsink.toml" --listen "127.0.0.1:$port" --http 127.0.0.1:0 \
        --upstream "udp://127.0.0.1:9" >"$dir/out.log" 2>"$dir/err.log" &
    PID=$!
}

start_dnsmasq() {
    local n=$1 port=$2 dir=$3
    mkdir -p "$dir"
    dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
        --user=root --pid-file= --bind-interfaces --listen-address=127.0.0.1 \
        --port="$port" --addn-hosts="$CACHE_DIR/$n/hosts.txt" \
        --log-queries --log-facility="$dir/queries.log" >"$dir/out.log" 2>&1 &
    PID=$!
}

start_unbound() {
    local n=$1 port=$2 dir=$3
    mkdir -p "$dir"
    cat >"$dir/unbound.conf" <<CONF
server:
    interface: 127.0.0.1
    port: $port
    do-ip6: no
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "$dir"
    pidfile: ""
    use-syslog: no
    logfile: "$dir/queries.log"
    log-queries: yes
    verbosity: 0
    num-threads: 1
    access-control: 127.0.0.0/8 allow
    include: "$CACHE_DIR/$n/unbound.txt"
CONF
    unbound -c "$dir/unbound.conf" >"$dir/out.log" 2>&1 &
    PID=$!
}

# measure SERVER SIZE: one start; prints "ready_ms rss_kb hwm_kb".
measure() {
    local server=$1 n=$2 port dir t0 ready rss hwm
    port=$(free_port)
    dir="$WORK/$server-$n"
    t0=$(date +%s%N)
    "start_$server" "$n" "$port" "$dir"
    PIDS+=("$PID")
    if ! ready=$(python3 "$WORK/ready.py" "$port" "$(ready_name "$n")" "$t0" "$PID"); then
        echo "$server did not answer; its output:" >&2
        tail -5 "$dir"/*.log >&2
        exit 1
    fi
    sleep "$SETTLE"
    rss=$(status_kb "$PID" VmRSS)
    hwm=$(status_kb "$PID" VmHWM)
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    rm -rf "$dir"
    echo "$ready $rss $hwm"
}

# --- the table ----------------------------------------------------------------------
for n in $SIZES $([ "$RELOAD" = 1 ] && echo "$RELOAD_SIZE"); do
    if [ ! -s "$CACHE_DIR/$n/last.txt" ]; then
        echo "# generating $n names into $CACHE_DIR/$n" >&2
        python3 "$WORK/gen.py" "$n" "$CACHE_DIR/$n"
    fi
done

declare -A RES
for n in $SIZES; do
    for s in $SERVERS; do
        echo "# $s with $n names" >&2
        RES[$s-$n]=$(measure "$s" "$n")
    done
done

echo
echo "## memory and start-up (query log on; RSS 2 s after ready, peak = VmHWM)"
printf '%-10s %-9s %10s %10s %9s %12s\n' names server "RSS MB" "peak MB" "ready ms" "RSS/dnsmasq"
for n in $SIZES; do
    for s in $SERVERS; do
        read -r ready rss hwm <<<"${RES[$s-$n]}"
        ratio=-
        if [ -n "${RES[dnsmasq-$n]:-}" ]; then
            read -r _ drss _ <<<"${RES[dnsmasq-$n]}"
            ratio=$(awk -v a="$rss" -v b="$drss" 'BEGIN {printf "%.2f", a / b}')
        fi
        printf '%-10s %-9s %10s %10s %9s %12s\n' "$n" "$s" "$(mb "$rss")" "$(mb "$hwm")" "$ready" "$ratio"
    done
done

# --- reload under load (winsink) ----------------------------------------------------
if [ "$RELOAD" = 1 ] && [[ " $SERVERS " == *" winsink "* ]]; then
    n=$RELOAD_SIZE
    echo "# winsink, catalog only (the base the policy's size is measured from)" >&2
    read -r _ base _ <<<"$(measure winsink 0 2>/dev/null || true)"
    echo "# winsink reload of $n names under $RELOAD_QPS qps" >&2
    port=$(free_port)
    dir="$WORK/winsink-reload"
    t0=$(date +%s%N)
    start_winsink "$n" "$port" "$dir"
    W_PID=$PID
    PIDS+=("$W_PID")
    python3 "$WORK/ready.py" "$port" "$(ready_name "$n")" "$t0" "$W_PID" >/dev/null
    sleep "$SETTLE"
    steady=$(status_kb "$W_PID" VmRSS)
    hwm_load=$(status_kb "$W_PID" VmHWM)
    dnsperf -s 127.0.0.1 -p "$port" -d "$CACHE_DIR/$n/queries.txt" -l 600 -Q "$RELOAD_QPS" \
        -c 2 >"$dir/dnsperf.out" 2>&1 &
    P_PID=$!
    PIDS+=("$P_PID")
    sleep 1
    for i in $(seq 1 "$RELOADS"); do
        # The RSS under load just before the reload: the "old" of old + new.
        printf '%s ' "$(status_kb "$W_PID" VmRSS)" >>"$dir/samples"
        python3 "$WORK/sample.py" "$W_PID" "$dir/err.log" "$i" >>"$dir/samples" &
        S_PID=$!
        sleep 0.2
        # One name changed, saved the way editors save (temp file, rename).
        sed "\$s/.*/0.0.0.0 reload-$i.bench.test/" "$CACHE_DIR/$n/hosts.txt" >"$dir/lists/.hosts.tmp"
        mv "$dir/lists/.hosts.tmp" "$dir/lists/hosts.txt"
        wait "$S_PID"
    done
    kill -INT "$P_PID" 2>/dev/null || true
    wait "$P_PID" 2>/dev/null || true
    lost=$(awk '/Queries lost/ {print $3}' "$dir/dnsperf.out")
    policy=$((steady - base))
    echo
    echo "## winsink reload of $n names under $RELOAD_QPS qps (dnsperf lost: ${lost:-?})"
    echo "catalog-only RSS $(mb "$base") MB; steady RSS $(mb "$steady") MB (policy $(mb "$policy") MB);" \
        "load peak (VmHWM) $(mb "$hwm_load") MB; steady + policy = $(mb $((steady + policy))) MB"
    i=0
    while read -r before peak after; do
        i=$((i + 1))
        # The verdict says by how much, against one policy's size: a third copy (or the
        # build's tables beside the new policy) would be tens of percent of it.
        over=$((peak - before - policy))
        if [ "$over" -le 0 ]; then
            verdict="within old + new"
        else
            verdict=$(awk -v o="$over" -v p="$policy" \
                'BEGIN {printf "ABOVE old + new by %.1f MB, %.1f%% of one policy", o / 1024, 100 * o / p}')
        fi
        echo "reload $i: RSS under load before it $(mb "$before") MB, old + new $(mb $((before + policy))) MB;" \
            "most RSS held $(mb "$peak") MB ($verdict), 3 s after $(mb "$after") MB"
    done <"$dir/samples"
    echo "VmHWM after the reloads: $(mb "$(status_kb "$W_PID" VmHWM)") MB"
fi
