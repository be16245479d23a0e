#!/usr/bin/env bash
# The container, built and run as an operator would: the image is built from ./Dockerfile
# with the Docker engine of ../shared/tools/docker-engine.sh, then run twice with the
# host's network on loopback, with Unbound on loopback as the only upstream:
#   1. on 127.0.0.1:PORT: dig gets the sinkhole for a blocked name and the upstream's
#      answer for a logged one; the process runs as uid 10053 with no capability but
#      CAP_NET_BIND_SERVICE; `docker inspect` reports the image's HEALTHCHECK `healthy`;
#      the JSON query log comes out of `docker logs`; `docker stop` exits 0 within 3 s
#      and the line of a query asked just before it is in the log (flushed);
#   2. `--cap-drop ALL --cap-add NET_BIND_SERVICE --read-only` on 127.0.0.1:53: answers
#      over UDP and TCP, healthy, stops with exit 0;
#   3. with deploy/kubernetes' securityContext (own network namespace, no-new-privileges,
#      the port sysctl): binds 53 with no effective capability, healthy, stops with 0.
# It prints the image size and build time.
#
#   bash tests/container.sh          # from .ci/run; skipped only without the engine script
#
# Without ../shared/tools/docker-engine.sh (a checkout on its own) it says so and exits 0;
# DOCKER_ENGINE_SH=path names the engine script elsewhere.
# Everything it starts (containers, Unbound, the engine if it was not running) is stopped
# on exit; the whole run is bounded by CONTAINER_TIMEOUT seconds (default 1800).
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${DOCKER_ENGINE_SH:-../shared/tools/docker-engine.sh}
if [[ ! -f $ENGINE ]]; then
    echo "container: SKIPPED: $ENGINE is absent, so there is no Docker engine to build and run the image with"
    exit 0
fi
for tool in unbound dig python3; do
    command -v "$tool" >/dev/null || { echo "container: $tool is not installed" >&2; exit 2; }
done

LAB=${DOCKER_LAB:-/var/tmp/docker-lab}
[[ -f $LAB/dockerd.pid ]] && engine_was_running=1 || engine_was_running=0
eval "$(bash "$ENGINE")"

IMAGE=winsink:ci
NAME=winsink-ci-$$
WORK=$(mktemp -d -t winsink-container.XXXXXX)
PIDS=()
cleanup() {
    local status=$?
    if [[ $status -ne 0 ]]; then
        for c in "$NAME" "$NAME-ro" "$NAME-k8s"; do
            docker logs "$c" >"$WORK/$c.log" 2>&1 && {
                echo "--- docker logs $c (last 30 lines) ---"
                tail -n 30 "$WORK/$c.log"
            }
        done
    fi
    docker rm -f "$NAME" "$NAME-ro" "$NAME-k8s" >/dev/null 2>&1 || true
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ $engine_was_running == 1 ]] || bash "$ENGINE" stop
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
(
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "${CONTAINER_TIMEOUT:-1800}" &
    sleeper=$!
    wait "$sleeper"
    echo "container: timed out" >&2
    kill -TERM $$
) &
PIDS+=($!)

PASSED=0
FAILED=0
check() {
    local what=$1
    shift
    if "$@"; then
        PASSED=$((PASSED + 1))
        echo "ok   $what"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL $what"
    fi
}

# ---------------------------------------------------------------- build
started=$(date +%s)
if ! docker build --network host -t "$IMAGE" . >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log"
    echo "container: docker build failed" >&2
    exit 1
fi
build_secs=$(($(date +%s) - started))
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "image $IMAGE: $((size / 1000000)) MB, built in ${build_secs} s (docker build --network host)"

# ---------------------------------------------------------------- upstream: Unbound
free_port() {
    python3 - <<'EOF'
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        u.close()
        continue
    t.close()
    u.close()
    print(port)
    break
EOF
}
UPORT=$(free_port)
cat >"$WORK/unbound.conf" <<EOF
server:
    interface: 127.0.0.1
    port: $UPORT
    do-ip6: no
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "$WORK"
    pidfile: ""
    use-syslog: no
    logfile: "$WORK/unbound.log"
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    # Nothing here may leave the machine: every other name is refused outright.
    local-zone: "." refuse
    local-zone: "windows.com." static
    local-data: "x.wns.windows.com. 300 IN A 192.0.2.53"
    local-zone: "lab.test." static
    local-data: "lab.test. 300 IN SOA ns.lab.test. admin.lab.test. 1 3600 600 86400 300"
EOF
unbound -d -c "$WORK/unbound.conf" 2>>"$WORK/unbound.log" &
PIDS+=($!)

# wait_for ADDR PORT: until something answers DNS there (bounded).
wait_for() {
    for _ in $(seq 1 150); do
        dig +time=1 +tries=1 -p "$2" "@$1" x.wns.windows.com A >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "container: nothing answers on $1:$2" >&2
    return 1
}
wait_for 127.0.0.1 "$UPORT"

# healthy CONTAINER: until docker inspect says healthy (bounded; false on unhealthy).
healthy() {
    local state
    for _ in $(seq 1 60); do
        state=$(docker inspect -f '{{.State.Health.Status}}' "$1")
        [[ $state == healthy ]] && return 0
        [[ $state == unhealthy ]] && break
        sleep 0.5
    done
    echo "     | health: $state; $(docker inspect -f '{{json .State.Health.Log}}' "$1" | tail -c 400)"
    return 1
}

answer_is() { # EXPECTED DIG-ARGS...
    local want=$1 got
    shift
    got=$(dig +short +time=2 +tries=2 "$@")
    [[ $got == "$want" ]] || { echo "     | dig $*: got '$got', want '$want'"; return 1; }
}

# stops_cleanly CONTAINER: docker stop exits 0 within 3 s and the container's exit code is 0.
stops_cleanly() {
    local t0 ms code
    t0=$(date +%s%N)
    docker stop -t 10 "$1" >/dev/null
    ms=$((($(date +%s%N) - t0) / 1000000))
    code=$(docker inspect -f '{{.State.ExitCode}}' "$1")
    echo "     | docker stop $1: ${ms} ms, exit code $code"
    [[ $code == 0 && $ms -lt 3000 ]]
}

# The image's HEALTHCHECK command, every second instead of every 30 s (CI waits for it).
HEALTH_FAST=(--health-interval 1s --health-start-period 1s)

# ---------------------------------------------------------------- 1: loopback port
PORT=$(free_port)
docker run -d --name "$NAME" --network host -e WINSINK_HEALTH_PORT="$PORT" "${HEALTH_FAST[@]}" \
    "$IMAGE" run --listen "127.0.0.1:$PORT" --upstream "udp://127.0.0.1:$UPORT" \
    --log-format json >/dev/null
wait_for 127.0.0.1 "$PORT"
check "blocked name gets the sinkhole" \
    answer_is 0.0.0.0 -p "$PORT" @127.0.0.1 watson.events.data.microsoft.com A
check "logged name gets the upstream's answer" \
    answer_is 192.0.2.53 -p "$PORT" @127.0.0.1 x.wns.windows.com A
pid=$(docker inspect -f '{{.State.Pid}}' "$NAME")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
caps=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
check "runs as uid 10053 (got $uid)" test "$uid" = 10053
# Bit 10 is CAP_NET_BIND_SERVICE; nothing else is effective.
check "only CAP_NET_BIND_SERVICE is effective (CapEff $caps)" test "$caps" = 0000000000000400
check "HEALTHCHECK reports healthy" healthy "$NAME"
echo "     | RSS after start and a few queries: $(awk '/^VmRSS:/ {print $2, $3}' "/proc/$pid/status")"
docker logs "$NAME" >"$WORK/stdout.log" 2>"$WORK/stderr.log"
check "the query log in docker logs is JSON, one object per line" python3 - "$WORK/stdout.log" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by_name = {l["qname"]: l for l in lines}
assert by_name["watson.events.data.microsoft.com"]["decision"] == "block", by_name
assert by_name["x.wns.windows.com"]["decision"] == "log", by_name
EOF
check "its first log line names the config" \
    grep -q 'config: /etc/winsink/config/winsink.toml ($WINSINK_CONFIG)' "$WORK/stderr.log"
last=flush-$$.lab.test
dig +time=2 +tries=1 -p "$PORT" @127.0.0.1 "$last" A >/dev/null || true
check "docker stop exits 0 within 3 s" stops_cleanly "$NAME"
docker logs "$NAME" >"$WORK/stdout.log" 2>"$WORK/stderr.log"
check "the query just before the stop is in the log (flushed)" grep -q "\"qname\":\"$last\"" "$WORK/stdout.log"
check "winsink said it stopped" grep -q 'stopped' "$WORK/stderr.log"

# ---------------------------------------------------------------- 2: port 53, locked down
if ss -H -lun 'sport = :53' | grep -q . || ss -H -ltn 'sport = :53' | grep -q .; then
    echo "container: port 53 is taken on this machine (ss -lunp 'sport = :53'):" >&2
    ss -lunp 'sport = :53' >&2
    exit 1
fi
docker run -d --name "$NAME-ro" --network host "${HEALTH_FAST[@]}" \
    --cap-drop ALL --cap-add NET_BIND_SERVICE --read-only \
    "$IMAGE" run --listen 127.0.0.1:53 --upstream "udp://127.0.0.1:$UPORT" >/dev/null
wait_for 127.0.0.1 53
check "--cap-drop ALL --read-only on port 53: UDP answer" \
    answer_is 0.0.0.0 -p 53 @127.0.0.1 watson.events.data.microsoft.com A
check "--cap-drop ALL --read-only on port 53: TCP answer" \
    answer_is 0.0.0.0 +tcp -p 53 @127.0.0.1 watson.events.data.microsoft.com A
check "--cap-drop ALL --read-only on port 53: healthy" healthy "$NAME-ro"
check "--cap-drop ALL --read-only on port 53: docker stop exits 0 within 3 s" stops_cleanly "$NAME-ro"

# ---------------------------------------------------------------- 3: Kubernetes' securityContext
# deploy/kubernetes/deployment.yaml's settings on the real image: a network namespace of
# its own (as a pod has), no privilege escalation (so the file capability is never
# granted), every capability dropped but NET_BIND_SERVICE, read-only root, uid 10053,
# and port 53 bound through the sysctl net.ipv4.ip_unprivileged_port_start instead.
docker run -d --name "$NAME-k8s" --network none "${HEALTH_FAST[@]}" \
    --user 10053:10053 --security-opt no-new-privileges \
    --cap-drop ALL --cap-add NET_BIND_SERVICE --read-only \
    --sysctl net.ipv4.ip_unprivileged_port_start=53 \
    "$IMAGE" run --listen 0.0.0.0:53 --upstream udp://127.0.0.1:9 >/dev/null
in_pod() { docker exec "$NAME-k8s" dig +short +time=2 +tries=2 -p 53 @127.0.0.1 "$@"; }
for _ in $(seq 1 50); do in_pod watson.events.data.microsoft.com A >/dev/null 2>&1 && break; sleep 0.2; done
check "Kubernetes securityContext: binds port 53 and answers" \
    test "$(in_pod watson.events.data.microsoft.com A)" = 0.0.0.0
pid=$(docker inspect -f '{{.State.Pid}}' "$NAME-k8s")
caps=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
check "Kubernetes securityContext: no effective capability (CapEff $caps)" test "$caps" = 0000000000000000
check "Kubernetes securityContext: healthy" healthy "$NAME-k8s"
check "Kubernetes securityContext: docker stop exits 0 within 3 s" stops_cleanly "$NAME-k8s"

echo "container: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
