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
. tests/lib.sh
need unbound unbound-checkconf dig python3

LAB=${DOCKER_LAB:-/var/tmp/docker-lab}
[[ -f $LAB/dockerd.pid ]] && engine_was_running=1 || engine_was_running=0
eval "$(bash "$ENGINE")"

IMAGE=winsink:ci
NAME=winsink-ci-$$
workdir winsink-container
containers_down() {
    if [[ $EXIT_STATUS -ne 0 ]]; then
        for c in "$NAME" "$NAME-ro" "$NAME-k8s"; do
            docker logs "$c" >"$WORK/$c.log" 2>&1 && {
                echo "--- docker logs $c (last 30 lines) ---"
                tail -n 30 "$WORK/$c.log"
            }
        done
    fi
    docker rm -f "$NAME" "$NAME-ro" "$NAME-k8s" >/dev/null 2>&1
    [[ $engine_was_running == 1 ]] || bash "$ENGINE" stop
}
at_exit containers_down
watchdog "${CONTAINER_TIMEOUT:-1800}" container

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
UPORT=$(free_port)
{
    unbound_conf "$UPORT" "$WORK/unbound.log"
    cat <<EOF
    # Nothing here may leave the machine: every other name is refused outright.
    local-zone: "." refuse
    local-zone: "windows.com." static
    local-data: "x.wns.windows.com. 300 IN A 192.0.2.53"
    local-zone: "lab.test." static
    local-data: "lab.test. 300 IN SOA ns.lab.test. admin.lab.test. 1 3600 600 86400 300"
EOF
} >"$WORK/unbound.conf"
start_unbound "$WORK/unbound.conf" "$UPORT" x.wns.windows.com

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
    --log-format json --http off >/dev/null
wait_dns "$PORT" x.wns.windows.com 30
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
# tls:// and https:// upstreams and https:// lists verify against the system's roots.
check "the image has the system's CA roots (ca-certificates)" \
    docker exec "$NAME" test -s /etc/ssl/certs/ca-certificates.crt
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
    "$IMAGE" run --listen 127.0.0.1:53 --upstream "udp://127.0.0.1:$UPORT" --http off >/dev/null
wait_dns 53 x.wns.windows.com 30
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

summary container
