#!/usr/bin/env bash
# Interop with real clients and a real upstream.
#
# Unbound on loopback serves a local zone and is winsink's only upstream; winsink runs in
# front of it; dig and kdig ask over UDP and TCP: blocked names in every sinkhole mode,
# forwarded names, NXDOMAIN, a ~4 KB TXT answer (TC over UDP, whole over TCP), EDNS
# buffer sizes 512/1232/4096, 0x20 mixed-case names, and a live reload that flips an area
# from log to block while dnsperf runs at a bounded rate and must lose no query.
#
# Usage: tests/interop.sh            (builds winsink with cargo)
#        WINSINK=path/to/winsink tests/interop.sh
# Needs: unbound, dig, kdig, dnsperf, python3 (Debian: unbound dnsutils knot-dnsutils dnsperf).
# Exits non-zero on any failed check; every process it starts is stopped on exit; the
# whole run is bounded by INTEROP_TIMEOUT seconds (default 300).
set -euo pipefail
cd "$(dirname "$0")/.."

. tests/lib.sh
need unbound unbound-checkconf dig kdig dnsperf python3
winsink_bin debug
workdir winsink-interop
show_logs() {
    [[ $EXIT_STATUS -ne 0 ]] || return 0
    echo "--- winsink stderr (last 40 lines) ---"
    tail -n 40 "$WORK/winsink.err" 2>/dev/null
    echo "--- unbound log (last 20 lines) ---"
    tail -n 20 "$WORK/unbound.log" 2>/dev/null
}
at_exit show_logs
watchdog "${INTEROP_TIMEOUT:-300}" interop

# ---------------------------------------------------------------- upstream: Unbound
UPORT="$(free_port)"
{
    unbound_conf "$UPORT" "$WORK/unbound.log"
    cat <<EOF
    verbosity: 1
    # Answers bigger than the client's EDNS size are truncated, as a real resolver does.
    max-udp-size: 4096
    # Nothing here may leave the machine: every other name is refused outright.
    local-zone: "." refuse
    local-zone: "lab.test." static
    local-data: "lab.test. 300 IN SOA ns.lab.test. admin.lab.test. 1 3600 600 86400 300"
    local-data: "lab.test. 300 IN NS ns.lab.test."
    local-data: "ns.lab.test. 300 IN A 192.0.2.1"
    local-data: "www.lab.test. 300 IN A 192.0.2.10"
    local-data: "www.lab.test. 300 IN AAAA 2001:db8::10"
    local-data: "alias.lab.test. 300 IN CNAME www.lab.test."
    local-zone: "windows.com." static
    local-data: "windows.com. 300 IN SOA ns.lab.test. admin.lab.test. 1 3600 600 86400 300"
    local-data: "x.wns.windows.com. 300 IN A 192.0.2.53"
    local-data: "x.wns.windows.com. 300 IN AAAA 2001:db8::53"
    local-zone: "microsoft.com." static
    local-data: "microsoft.com. 300 IN SOA ns.lab.test. admin.lab.test. 1 3600 600 86400 300"
    local-data: "watson.events.data.microsoft.com. 300 IN A 192.0.2.66"
    local-data: "displaycatalog.mp.microsoft.com. 300 IN A 192.0.2.67"
EOF
    # big.lab.test: 16 TXT strings of 250 bytes, about 4 KB on the wire.
    for i in $(seq -w 1 16); do
        printf '    local-data: "big.lab.test. 300 IN TXT \\"%s-%s\\""\n' "$i" "$(printf 'x%.0s' $(seq 1 247))"
    done
    # mid.lab.test: about 800 bytes, more than 512 and less than 1232.
    for i in 1 2 3; do
        printf '    local-data: "mid.lab.test. 300 IN TXT \\"%s-%s\\""\n' "$i" "$(printf 'y%.0s' $(seq 1 247))"
    done
} >"$WORK/unbound.conf"

start_unbound "$WORK/unbound.conf" "$UPORT" www.lab.test
echo "unbound on 127.0.0.1:$UPORT"

# ---------------------------------------------------------------- winsink
PORT="$(free_port)"
CONFIG="$WORK/winsink.toml"

# write_config STORE_ACTION: the test config, written atomically as an editor would.
write_config() {
    cat >"$WORK/winsink.toml.tmp" <<EOF
# interop test config
default_action = "log"

[areas]
diagnostic-data = "block"
microsoft-store = "$1"

[server]
listen = ["127.0.0.1:$PORT"]
upstreams = ["udp://127.0.0.1:$UPORT"]

# The HTTP API is not what this tests: off, so no fixed port is bound.
[http]
listen = []

[sinkhole]
mode = "null-ip"

# One client address per sinkhole mode: dig -b 127.0.0.N picks the mode.
[[groups]]
name = "nxdomain"
clients = ["127.0.0.2/32"]
sinkhole = { mode = "nxdomain" }

[[groups]]
name = "nodata"
clients = ["127.0.0.3/32"]
sinkhole = { mode = "nodata" }

[[groups]]
name = "refused"
clients = ["127.0.0.4/32"]
sinkhole = { mode = "refused" }

[[groups]]
name = "custom"
clients = ["127.0.0.5/32"]
sinkhole = { mode = "custom", ipv4 = "192.0.2.99", ipv6 = "2001:db8::99" }

[log]
queries = "all"
format = "json"
file = "queries.log"
EOF
    mv "$WORK/winsink.toml.tmp" "$CONFIG"
}
write_config log

"$WINSINK" check --config "$CONFIG" >/dev/null
"$WINSINK" run --config "$CONFIG" >"$WORK/winsink.out" 2>"$WORK/winsink.err" &
WINSINK_PID=$!
track "$WINSINK_PID"
wait_dns "$PORT" www.lab.test
echo "winsink on 127.0.0.1:$PORT, forwarding to unbound"
echo

# ---------------------------------------------------------------- helpers for checks
# q ARGS...: dig against winsink, full output.
q() { dig +time=3 +tries=1 -p "$PORT" @127.0.0.1 "$@" 2>&1 || true; }
# k ARGS...: kdig against winsink, full output.
k() { kdig +timeout=3 +retry=0 -p "$PORT" @127.0.0.1 "$@" 2>&1 || true; }

status_is() { grep -q "status: $1" <<<"$2"; }
# answer_has OUTPUT REGEX: the ANSWER section has a line matching REGEX.
answer_has() { awk '/ANSWER SECTION/{a=1;next} /^$/{a=0} a' <<<"$1" | grep -Eq "$2"; }
answer_count() { grep -Eo 'ANSWER: [0-9]+' <<<"$1" | head -n1 | awk '{print $2}'; }
authority_has_soa() { awk '/AUTHORITY SECTION/{a=1;next} /^$/{a=0} a' <<<"$1" | grep -q 'SOA'; }
flags_have() { grep -E '^;; flags:' <<<"$2" | grep -Eq " $1[ ;]"; }
k_flags_have() { grep -E '^;; Flags:' <<<"$2" | grep -Eq " $1( |;|$)"; }

echo "== forwarded answers (dig and kdig, UDP and TCP)"
for proto in udp tcp; do
    opt=+notcp
    [[ $proto == tcp ]] && opt=+tcp
    out="$(q $opt www.lab.test A)"
    check "dig $proto: www.lab.test A is forwarded (192.0.2.10)" answer_has "$out" 'IN\s+A\s+192\.0\.2\.10'
    out="$(q $opt www.lab.test AAAA)"
    check "dig $proto: www.lab.test AAAA is forwarded (2001:db8::10)" answer_has "$out" 'IN\s+AAAA\s+2001:db8::10'
    out="$(q $opt alias.lab.test A)"
    check "dig $proto: CNAME chain arrives as unbound sent it" \
        answer_has "$out" 'alias\.lab\.test\.\s+[0-9]+\s+IN\s+CNAME\s+www\.lab\.test\.'
    out="$(q $opt nope.lab.test A)"
    check "dig $proto: NXDOMAIN is forwarded" status_is NXDOMAIN "$out"
    check "dig $proto: NXDOMAIN carries the zone's SOA" authority_has_soa "$out"
    out="$(k $opt www.lab.test A)"
    check "kdig $proto: www.lab.test A is forwarded" answer_has "$out" 'IN\s+A\s+192\.0\.2\.10'
    out="$(k $opt nope.lab.test A)"
    check "kdig $proto: NXDOMAIN is forwarded" grep -q 'status: NXDOMAIN' <<<"$out"
    out="$(q $opt x.wns.windows.com A)"
    check "dig $proto: x.wns.windows.com (microsoft-store: log) is forwarded" \
        answer_has "$out" 'IN\s+A\s+192\.0\.2\.53'
done

echo "== blocked names, per sinkhole mode"
BLOCKED=watson.events.data.microsoft.com
for proto in udp tcp; do
    opt=+notcp
    [[ $proto == tcp ]] && opt=+tcp
    out="$(q $opt $BLOCKED A)"
    check "null-ip $proto: A is 0.0.0.0" answer_has "$out" 'IN\s+A\s+0\.0\.0\.0'
    out="$(q $opt $BLOCKED AAAA)"
    check "null-ip $proto: AAAA is ::" answer_has "$out" 'IN\s+AAAA\s+::$'
    out="$(q $opt $BLOCKED MX)"
    check "null-ip $proto: MX is NOERROR with no answer" \
        bash -c '[[ "$(grep -Eo "status: [A-Z]+" <<<"$1")" == "status: NOERROR" && "$2" == 0 ]]' _ "$out" "$(answer_count "$out")"
    out="$(q $opt -b 127.0.0.2 $BLOCKED A)"
    check "nxdomain $proto: NXDOMAIN" status_is NXDOMAIN "$out"
    check "nxdomain $proto: with an SOA in authority" authority_has_soa "$out"
    out="$(q $opt -b 127.0.0.3 $BLOCKED A)"
    check "nodata $proto: NOERROR, no answer, SOA in authority" \
        bash -c '[[ "$(grep -Eo "status: [A-Z]+" <<<"$1")" == "status: NOERROR" && "$2" == 0 ]] && grep -q SOA <<<"$1"' _ "$out" "$(answer_count "$out")"
    out="$(q $opt -b 127.0.0.4 $BLOCKED A)"
    check "refused $proto: REFUSED" status_is REFUSED "$out"
    out="$(q $opt -b 127.0.0.5 $BLOCKED A)"
    check "custom $proto: A is 192.0.2.99" answer_has "$out" 'IN\s+A\s+192\.0\.2\.99'
    out="$(q $opt -b 127.0.0.5 $BLOCKED AAAA)"
    check "custom $proto: AAAA is 2001:db8::99" answer_has "$out" 'IN\s+AAAA\s+2001:db8::99'
    out="$(k $opt $BLOCKED A)"
    check "kdig $proto: blocked A is 0.0.0.0" answer_has "$out" 'IN\s+A\s+0\.0\.0\.0'
    out="$(k $opt -b 127.0.0.2 $BLOCKED A)"
    check "kdig $proto: nxdomain mode" grep -q 'status: NXDOMAIN' <<<"$out"
done
out="$(q +dnssec $BLOCKED A)"
check "blocked answer carries Extended DNS Error 15 (Blocked)" grep -Eq 'EDE: 15' <<<"$out"

echo "== a 4 KB TXT answer: TC over UDP, whole over TCP"
for size in 512 1232 4096; do
    out="$(q +notcp +ignore +bufsize=$size big.lab.test TXT)"
    check "dig udp bufsize=$size: big TXT is truncated (TC)" flags_have tc "$out"
done
out="$(q +tcp big.lab.test TXT)"
check "dig tcp: all 16 TXT strings arrive" bash -c '[[ "$1" == 16 ]]' _ "$(answer_count "$out")"
out="$(q big.lab.test TXT)"
check "dig (default, retries on TCP after TC): all 16 TXT strings arrive" \
    bash -c '[[ "$1" == 16 ]]' _ "$(answer_count "$out")"
out="$(k +notcp +ignore +bufsize=1232 big.lab.test TXT)"
check "kdig udp: big TXT is truncated (TC)" k_flags_have tc "$out"
out="$(k +tcp big.lab.test TXT)"
check "kdig tcp: all 16 TXT strings arrive" \
    bash -c '[[ "$(grep -c "TXT" <<<"$1")" -ge 16 ]]' _ "$out"

echo "== EDNS buffer sizes"
out="$(q +notcp +ignore +bufsize=512 mid.lab.test TXT)"
check "bufsize=512: an 800-byte answer is truncated" flags_have tc "$out"
for size in 1232 4096; do
    out="$(q +notcp +ignore +bufsize=$size mid.lab.test TXT)"
    check "bufsize=$size: an 800-byte answer fits (no TC, 3 records)" \
        bash -c '! grep -E "^;; flags:" <<<"$1" | grep -q " tc" && [[ "$2" == 3 ]]' _ "$out" "$(answer_count "$out")"
done
for size in 512 1232 4096; do
    out="$(q +notcp +bufsize=$size www.lab.test A)"
    check "bufsize=$size: the answer echoes EDNS with winsink's 1232-byte payload" \
        grep -Eq 'EDNS: version: 0, flags:.*; udp: 1232' <<<"$out"
done
out="$(q +notcp +noedns www.lab.test A)"
check "no EDNS in the query: none in the answer" bash -c '! grep -q "OPT PSEUDOSECTION" <<<"$1"' _ "$out"

echo "== 0x20 mixed-case names"
out="$(q +notcp WwW.LaB.tEsT A)"
check "forwarded: the question comes back in the client's case" grep -q ';WwW.LaB.tEsT.' <<<"$out"
check "forwarded: and is answered" answer_has "$out" '192\.0\.2\.10'
out="$(q +notcp WaTsOn.EvEnTs.DaTa.MiCrOsOfT.CoM A)"
check "blocked: mixed case is still blocked" answer_has "$out" 'IN\s+A\s+0\.0\.0\.0'
check "blocked: the question comes back in the client's case" grep -q ';WaTsOn.EvEnTs.DaTa.MiCrOsOfT.CoM.' <<<"$out"
out="$(k +notcp X.WNS.Windows.COM A)"
check "kdig: X.WNS.Windows.COM is forwarded" grep -q '192.0.2.53' <<<"$out"

echo "== the query log"
check "one JSON line per query with decision and areas" python3 - "$WORK/queries.log" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
blocked = [l for l in lines if l["qname"].lower().startswith("watson.") and l["decision"] == "block"]
assert blocked, "no block lines"
assert all(l["decided_by"]["kind"] == "area" and l["decided_by"]["id"] == "diagnostic-data"
           and any(a["id"] == "diagnostic-data" for a in l["areas"]) for l in blocked), blocked[0]
store = [l for l in lines if l["qname"].lower() == "x.wns.windows.com" and l["decision"] == "log"]
assert store, "no log line for x.wns.windows.com"
EOF

echo "== live reload under load: microsoft-store log -> block while dnsperf runs"
DATA="$WORK/dnsperf.txt"
printf '%s\n' "x.wns.windows.com A" "www.lab.test A" "watson.events.data.microsoft.com A" \
    "nope.lab.test A" "x.wns.windows.com AAAA" >"$DATA"
dnsperf -s 127.0.0.1 -p "$PORT" -d "$DATA" -Q 2000 -l 10 -t 2 >"$WORK/dnsperf.out" 2>&1 &
PERF_PID=$!
track "$PERF_PID"
sleep 3

# wait_answer NAME REGEX: seconds until winsink's answer for NAME matches REGEX (max 5).
wait_answer() {
    local start now
    start=$(date +%s.%N)
    for _ in $(seq 1 100); do
        if answer_has "$(q +notcp "$1" A)" "$2"; then
            now=$(date +%s.%N)
            python3 -c "print(f'{$now - $start:.2f}')"
            return 0
        fi
        sleep 0.05
    done
    echo 99
    return 1
}
within_2s() { python3 -c "import sys; sys.exit(0 if float('$1') <= 2.0 else 1)"; }

write_config block
took=$(wait_answer x.wns.windows.com 'IN\s+A\s+0\.0\.0\.0' || true)
check "x.wns.windows.com is sinkholed ${took}s after the edit, without a restart (<= 2 s)" within_2s "$took"
sleep 2
write_config log
took=$(wait_answer x.wns.windows.com 'IN\s+A\s+192\.0\.2\.53' || true)
check "reverting the edit restores forwarding after ${took}s (<= 2 s)" within_2s "$took"
wait "$PERF_PID" || true
sent="$(awk '/Queries sent:/{print $3}' "$WORK/dnsperf.out")"
lost="$(awk '/Queries lost:/{print $3}' "$WORK/dnsperf.out")"
echo "     dnsperf: sent=${sent:-?} lost=${lost:-?} ($(grep -E 'Queries per second' "$WORK/dnsperf.out" | xargs))"
check "dnsperf at 2000 qps across two reloads: queries were sent" test "${sent:-0}" -gt 10000
check "dnsperf at 2000 qps across two reloads: zero lost queries" test "${lost:-1}" -eq 0
check "winsink logged what changed" grep -q 'microsoft-store' "$WORK/winsink.err"
check "winsink is still the same process (no restart)" kill -0 "$WINSINK_PID"

echo
summary interop
