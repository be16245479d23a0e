#!/usr/bin/env bash
# Throughput and peak memory of `winsink report` on the daemon's JSON query lines.
#
#   bash bench/report.sh                 # 10,000,000 lines, one job
#   LINES=2000000 JOBS=2 bash bench/report.sh
#
# A base log of BASE lines is generated in today's daemon format (field order, escaping,
# decided_by, areas as {id, name}, the catalog's real impact texts): names of the built-in
# catalog's endpoints (wildcards filled in), names under Microsoft suffixes that no area
# lists, and other names; 50 clients; a week of timestamps; decisions as
# config/winsink.toml gives them. The report then reads that file LINES/BASE times (named
# again on the command line, so from the page cache: the figure is the report's, not the
# disk's), and /usr/bin/time gives the wall time and the peak RSS.
#
# Measured on the 2-core development machine (release build, quiet: load average 1.4-1.6
# under `flock -x /work/coord/quiet.lock`; CPU time, user + system, is the per-core figure),
# 595-byte lines, one run each, the two builds alternating:
#   WINSINK=<build of a804a46> bash bench/report.sh   (the field scan, src/report/scan.rs)
#       10,000,000 lines: 7.17 s CPU = 1,394,700 lines/s per core (twice);
#       peak RSS 11.9-12.1 MiB
#   bash bench/report.sh   (2756bd8: + the daemon's layout, Scan::daemon, and the line
#                           read in place)
#       10,000,000 lines: 5.50-5.63 s CPU = 1,776,199-1,818,182 lines/s per core;
#       peak RSS 11.9-12.0 MiB
#   JOBS=2 bash bench/report.sh
#       10,000,000 lines: 2.69 s wall = 3,717,472 lines/s, 5.28 s CPU; peak RSS 13.4 MiB
# (Earlier sessions' figures here were lower — the field scan at 848,896 and 774k lines/s
# per core, serde_json per line at 619,195 — on a slower or busier host: compare figures
# of one session only.) What is left, by `perf record`: the scan's walk and its marking
# pass about 40% of the time, the counting maps with the ts and client parses about 30%,
# std's UTF-8 check 8% (simdutf8 per line measured slower; a micro-benchmark put a check
# of whole read buffers at 2% saved), the kernel's copy out of the page cache 5%, the
# newline search 4%.
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${LINES:-10000000}
BASE=${BASE:-100000}
JOBS=${JOBS:-1}
WORK=$(mktemp -d /tmp/winsink-report-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

for tool in python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench/report.sh needs $tool" >&2; exit 1; }
done
# WINSINK=path measures that binary (an older build, say) instead of building this one.
if [[ -z ${WINSINK:-} ]]; then
    cargo build -q --release -p winsink-cli
fi
bin=${WINSINK:-${CARGO_TARGET_DIR:-target}/release/winsink}

python3 - "$BASE" "$WORK/base.log" <<'EOF'
import json, random, sys, tomllib
n, out = int(sys.argv[1]), sys.argv[2]
random.seed(14)
catalog = tomllib.load(open("policies/windows11-enterprise.toml", "rb"))
blocked = {"diagnostic-data"}
endpoints = []
for area in catalog["area"]:
    for e in area["endpoint"]:
        endpoints.append((area, e))
def fill(p):
    return p.replace("*", random.choice(["a", "x1", "cdn", "eu-west", "7"]), 1).replace("*", "b")
names = [(fill(e["pattern"]), area, e) for area, e in endpoints for _ in range(3)]
unlisted = [f"{w}{i}.{s}" for i in range(400) for w, s in [("svc", "microsoft.com"), ("edge", "msn.com")]]
other = [f"host{i}.example{i % 37}.org" for i in range(1500)]
clients = [f"192.168.56.{100 + i}" for i in range(50)]
t0 = 1_795_000_000  # 2026-11-18
with open(out, "w") as f:
    for i in range(n):
        ts = t0 + i * 604_800 / n
        secs = int(ts)
        stamp = "%s.%06dZ" % (__import__("time").strftime("%Y-%m-%dT%H:%M:%S", __import__("time").gmtime(secs)), int((ts - secs) * 1e6))
        r = random.random()
        if r < 0.6:
            q, area, e = random.choice(names)
            decision = "block" if area["id"] in blocked else "log"
            by = {"kind": "area", "id": area["id"], "name": area["name"], "pattern": e["pattern"], "action": decision}
            line = {"decided_by": by, "areas": [{"id": area["id"], "name": area["name"]}], "patterns": [e["pattern"]],
                    "impact": [e["description"] or area.get("impact", "")], "impact_scope": None if e["description"] else "area"}
            upstream = None if decision == "block" else "udp://192.168.56.1:53"
            rcode = "NOERROR"
        else:
            q = random.choice(unlisted) if r < 0.75 else random.choice(other)
            decision = "pass"
            line = {"decided_by": None, "areas": [], "patterns": [], "impact": [], "impact_scope": None}
            upstream = "udp://192.168.56.1:53"
            rcode = random.choice(["NOERROR", "NOERROR", "NOERROR", "NXDOMAIN"])
        rec = {"ts": stamp, "client": random.choice(clients), "proto": "udp", "qname": q, "qtype": random.choice(["A", "AAAA", "HTTPS"]),
               "decision": decision, **line, "rcode": rcode, "answers": 1, "cached": random.random() < 0.5,
               "upstream": upstream, "duration_us": random.randint(20, 20000)}
        f.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
EOF

copies=$(( LINES / BASE ))
args=()
for _ in $(seq "$copies"); do args+=("$WORK/base.log"); done
bytes=$(( $(stat -c %s "$WORK/base.log") * copies ))
echo "base log: $BASE lines, $(( $(stat -c %s "$WORK/base.log") / BASE )) bytes a line; reading it $copies times ($(( copies * BASE )) lines, $(( bytes / 1000000 )) MB), --jobs $JOBS" >&2
cat "$WORK/base.log" >/dev/null  # into the page cache
/usr/bin/time -v "$bin" report --config config/winsink.toml --jobs "$JOBS" --format json \
    -o "$WORK/report.json" "${args[@]}" 2>"$WORK/time.txt"
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time.txt")
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time.txt")
user=$(sed -n 's/.*User time (seconds): //p' "$WORK/time.txt")
sys=$(sed -n 's/.*System time (seconds): //p' "$WORK/time.txt")
python3 - "$wall" "$user" "$sys" "$rss" "$(( copies * BASE ))" "$JOBS" "$WORK/report.json" <<'EOF'
import json, sys
wall, user, sysc, rss, lines, jobs, path = sys.argv[1:]
parts = [float(p) for p in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
cpu = float(user) + float(sysc)
report = json.load(open(path))
assert report["queries"] == int(lines), (report["queries"], lines)
print(f"{int(lines):,} lines in {secs:.2f} s wall ({int(lines) / secs:,.0f} lines/s), "
      f"{cpu:.2f} s CPU ({int(lines) / cpu:,.0f} lines/s per core), --jobs {jobs}, "
      f"peak RSS {int(rss) / 1024:.1f} MiB")
EOF
