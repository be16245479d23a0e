#!/usr/bin/env bash
# Faults, end to end: each one is made to happen to a running winsink while `dig` asks
# for a blocked name every 20 ms; one line per fault says what that name got during
# the fault (the sinkhole answer, 0.0.0.0, every time is the pass) and what winsink
# logged about it.
#
#   bash bench/faults.sh                   # uses target/debug/winsink (built if missing)
#   WINSINK=target/release/winsink bash bench/faults.sh
#
# Faults: the config emptied; a list truncated to 0 bytes; a list rewritten in two parts
# with a pause; the query log's disk full (a 256 KiB tmpfs: needs root, else skipped);
# the upstream dead (a closed port); the listen port taken by a second winsink; 1,500
# TCP connections from one address; a 20k qps flood from one address (ratelimit_qps).
# Upstream: a stub on loopback that answers every A question with 192.0.2.1.
#
# Measured on the 2-core development machine (debug build, 2026-12-01; log text cut): the
# blocked name got the sinkhole answer, 0.0.0.0, on every probe of every fault.
#   config emptied        blocked name: 0.0.0.0  10/10   ERROR …/winsink.toml is empty: keeping the running policy
#   list truncated        listed name:  0.0.0.0  10/10   ERROR reload failed; still serving the previous policy: …
#   list in two parts     listed name:  0.0.0.0  17/17   INFO reloaded: list block.txt: block 3 → 4 names
#   disk full (query log) blocked name: 0.0.0.0  39/39   WARN query log: cannot write to …/q.log: No space left on
#   upstream dead         blocked name: 0.0.0.0   9/9    WARN upstream udp://127.0.0.1:46712 did not answer the st
#   port taken            blocked name: 0.0.0.0  11/11   second winsink: exit 1, "cannot bind tcp 127.0.0.1:53406
#   TCP flood (1,500)     blocked name: 0.0.0.0  17/17   another address over TCP: 0.0.0.0; WARN tcp: 1 connection
#   20k qps flood         blocked name: 0.0.0.0   8/8    WARN rate limit: 1 queries over 200 a second from one cli
set -euo pipefail
cd "$(dirname "$0")/.."

. tests/lib.sh
need dig python3
winsink_bin debug
workdir winsink-faults
MOUNTED=
at_exit '[[ -z $MOUNTED ]] || umount -l "$MOUNTED" 2>/dev/null'

# The stub upstream: A 192.0.2.1 for every A question, NOERROR and nothing else.
UP_PORT=$(free_port)
python3 - "$UP_PORT" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 12:
        continue
    i = 12
    while i < len(q) and q[i] != 0:
        i += q[i] + 1
    end = i + 5
    question = q[12:end]
    qtype = q[end - 4:end - 2]
    an = 1 if qtype == b"\x00\x01" else 0
    head = q[:2] + b"\x81\x80\x00\x01" + an.to_bytes(2, "big") + b"\x00\x00\x00\x00"
    body = question + (b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01" if an else b"")
    s.sendto(head + body, peer)
EOF
track $!

# start NAME CONFIG-EXTRA [UPSTREAM]: a winsink in $WORK/NAME; sets PORT and W_PID.
start() {
    local dir=$WORK/$1 upstream=${3:-udp://127.0.0.1:$UP_PORT}
    mkdir -p "$dir"
    printf 'a.listed.test\nb.listed.test\nlisted.example.test\n' >"$dir/block.txt"
    cat >"$dir/winsink.toml" <<CONF
[[rules]]
pattern = "*.blocked.test"
action = "block"

[[lists]]
path = "block.txt"
action = "block"

$2
CONF
    PORT=$(free_port)
    # --http off: the HTTP API is not what this tests, and no fixed port is bound.
    "$WINSINK" run --config "$dir/winsink.toml" --listen "127.0.0.1:$PORT" --http off \
        --upstream "$upstream" --log-format json >"$dir/queries.log" 2>"$dir/stderr" &
    W_PID=$!
    track "$W_PID"
    wait_log "$dir/stderr" "listening on" 5 || { cat "$dir/stderr" >&2; exit 1; }
}

# probe NAME SECONDS: asks for NAME every 20 ms for SECONDS in the background.
probe() {
    local name=$1 secs=$2 out=$WORK/probe.$RANDOM
    : >"$out"
    (
        end=$(($(date +%s%N) + secs * 1000000000))
        while (($(date +%s%N) < end)); do
            dig +short +tries=1 +time=1 -b "${PROBE_FROM:-127.0.0.1}" -p "$PORT" @127.0.0.1 "$name" A >>"$out" 2>&1 || echo "no answer" >>"$out"
            echo "--" >>"$out"
            sleep 0.02
        done
    ) &
    PROBE_PID=$!
    PROBE_OUT=$out
}

# report FAULT WHAT LOGLINE: waits for the prober and prints the fault's line.
report() {
    wait "$PROBE_PID" || true
    local total ok
    total=$(grep -c -- '^--$' "$PROBE_OUT" || true)
    ok=$(awk '/^--$/ { n += (seen == 1); seen = 0; next } $0 == "0.0.0.0" { seen++ } END { print n + 0 }' "$PROBE_OUT")
    printf '%-21s %-13s 0.0.0.0 %3s/%-3s  %s\n' "$1" "$2" "$ok" "$total" "$3"
}

logline() { # logline DIR PATTERN: the first stderr line matching, shortened
    grep -m1 -E "$2" "$WORK/$1/stderr" | sed -E "s/^[^ ]+ +//; s/ winsink[a-z_:]*: / /; s#$WORK/[a-z]*/#…/#g" \
        | cut -c1-140 || echo "(nothing logged)"
}

stop() { kill "$W_PID" 2>/dev/null || true; wait "$W_PID" 2>/dev/null || true; }

# 1. The config emptied.
start empty ""
probe x.blocked.test 1
sleep 0.2
: >"$WORK/empty/winsink.toml"
sleep 0.8
report "config emptied" "blocked name:" "$(logline empty 'is empty')"
stop

# 2. A list truncated to 0 bytes (a failed download).
start truncated ""
probe listed.example.test 1
sleep 0.2
: >"$WORK/truncated/block.txt"
sleep 0.8
report "list truncated" "listed name:" "$(logline truncated 'valid and')"
stop

# 3. A list rewritten in two parts, 0.5 s apart, the file open all along.
start twoparts ""
probe listed.example.test 2
sleep 0.2
python3 - "$WORK/twoparts/block.txt" <<'EOF'
import sys, time
text = "a.listed.test\nb.listed.test\nc.listed.test\nlisted.example.test\n"
with open(sys.argv[1], "w") as f:
    f.write(text[:len(text) // 3]); f.flush(); time.sleep(0.5); f.write(text[len(text) // 3:])
EOF
sleep 1.3
report "list in two parts" "listed name:" "$(logline twoparts 'reloaded|reload failed')"
stop

# 4. The query log's disk full.
if mkdir -p "$WORK/tmpfs" && mount -t tmpfs -o size=256k tmpfs "$WORK/tmpfs" 2>/dev/null; then
    MOUNTED=$WORK/tmpfs
    start diskfull "[log]
file = \"$WORK/tmpfs/q.log\""
    probe x.blocked.test 4
    sleep 0.3
    dd if=/dev/zero of="$WORK/tmpfs/filler" bs=4k 2>/dev/null || true
    sleep 2
    rm -f "$WORK/tmpfs/filler"
    sleep 1.7
    report "disk full (query log)" "blocked name:" "$(logline diskfull 'cannot write') | $(logline diskfull 'again after' | cut -c1-60)"
    stop
    umount -l "$MOUNTED" && MOUNTED=
else
    echo "disk full (query log) skipped: cannot mount a tmpfs (needs root)"
fi

# 5. The upstream dead: its port closed.
start deadup "" "udp://127.0.0.1:$(free_port)"
probe x.blocked.test 1
dig +short +tries=1 +time=3 -p "$PORT" @127.0.0.1 www.example.test A >/dev/null || true
report "upstream dead" "blocked name:" "$(logline deadup 'did not answer|is not answering')"
stop

# 6. The listen port taken by a second winsink.
start porttaken ""
probe x.blocked.test 1
code=0
"$WINSINK" run --config "$WORK/porttaken/winsink.toml" --listen "127.0.0.1:$PORT" --http off \
    --upstream "udp://127.0.0.1:$UP_PORT" >/dev/null 2>"$WORK/porttaken/second" || code=$?
report "port taken" "blocked name:" "second winsink: exit $code, \"$(grep -m1 -o 'cannot bind.*' "$WORK/porttaken/second" | cut -c1-60)\""
stop

# 7. 1,500 TCP connections from one address.
start tcpflood ""
probe x.blocked.test 2
python3 - "$PORT" <<'EOF' &
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(1500)]
time.sleep(2)
EOF
FLOOD=$!
sleep 0.5
tcp=$(dig +tcp +short +tries=1 +time=2 -b 127.0.0.2 -p "$PORT" @127.0.0.1 y.blocked.test A || true)
wait "$FLOOD" || true
report "TCP flood (1,500)" "blocked name:" "another address over TCP: ${tcp:-nothing}; $(logline tcpflood 'tcp: ')"
stop

# 8. A 20k qps flood from one address, with ratelimit_qps = 200; the probe asks from
# another address.
start qpsflood "[server]
ratelimit_qps = 200"
python3 - "$PORT" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
q = bytes.fromhex("beef01000001000000000000") + b"\x01x\x07blocked\x04test\x00\x00\x01\x00\x01"
end = time.time() + 1.5
n = 0
while time.time() < end:
    s.sendto(q, ("127.0.0.1", int(sys.argv[1]))); n += 1
    if n % 20 == 0:
        time.sleep(0.001)
EOF
FLOOD=$!
PROBE_FROM=127.0.0.2 probe x.blocked.test 1
wait "$FLOOD" || true
report "20k qps flood" "blocked name:" "$(logline qpsflood 'rate limit')"
stop
