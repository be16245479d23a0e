# Shell helpers shared by tests/*.sh and bench/*.sh. Each script starts with
#
#   set -euo pipefail
#   cd "$(dirname "$0")/.."     # the repository root, wherever it was called from
#   . tests/lib.sh
#
# Sourcing it installs the exit trap: every process given to `track` is stopped (TERM,
# then waited for), the `at_exit` commands run, and $WORK is removed; the script's exit
# status is kept. Nothing here binds a fixed port.
#
#   need TOOL...                 exit 2 naming the first tool that is not installed
#   workdir PREFIX               WORK=a fresh temporary folder (removed on exit)
#   track PID                    stop PID on exit
#   at_exit 'COMMAND'            run COMMAND on exit, after the tracked processes stopped and
#                                before $WORK is removed; $EXIT_STATUS is the script's status
#   watchdog SECONDS LABEL       the whole run is bounded: after SECONDS the script gets TERM
#   winsink_bin debug|release    WINSINK=$WINSINK if set, else the one cargo builds (absolute)
#   free_port                    a port free for both UDP and TCP on 127.0.0.1
#   wait_dns PORT NAME [SECONDS] until something answers DNS for NAME on 127.0.0.1:PORT
#                                (default 10 s; any rcode counts); 1 with a message if not
#   wait_log FILE REGEX [SECONDS] until a line of FILE matches REGEX (default 10 s)
#   unbound_conf PORT [LOGFILE]  the `server:` head of a loopback-only Unbound config on PORT
#                                in the foreground, no chroot/syslog; append zones after it
#   start_unbound CONF PORT NAME [WRAPPER...]
#                                checks CONF, starts `WRAPPER... unbound -d -c CONF` (stderr to
#                                $WORK/unbound.log), tracks it as UNBOUND_PID, waits for NAME
#   check WHAT COMMAND...        runs COMMAND; counts and prints ok/FAIL; on failure shows the
#                                tail of the last argument when it has several lines (a tool's
#                                output); `summary LABEL` prints the counts, false on a failure

_LIB_PIDS=()
_LIB_AT_EXIT=()
PASSED=0
FAILED=0

track() { _LIB_PIDS+=("$1"); }
at_exit() { _LIB_AT_EXIT+=("$1"); }

_lib_exit() {
    EXIT_STATUS=$?
    set +e
    local pid cmd
    for pid in "${_LIB_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${_LIB_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    for cmd in "${_LIB_AT_EXIT[@]}"; do eval "$cmd"; done
    [[ -z ${WORK:-} ]] || rm -rf "$WORK"
    exit "$EXIT_STATUS"
}
trap _lib_exit EXIT
trap 'exit 130' INT TERM

need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$(basename "$0"): $tool is not installed" >&2; exit 2; }
    done
}

workdir() { WORK=$(mktemp -d -t "$1.XXXXXX"); }

watchdog() {
    local secs=$1 label=$2
    # Stopped on exit, it takes its sleep along.
    (
        trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
        sleep "$secs" &
        sleeper=$!
        wait "$sleeper"
        echo "$label: timed out after $secs s" >&2
        kill -TERM $$
    ) &
    track $!
}

winsink_bin() {
    if [[ -z ${WINSINK:-} ]]; then
        if [[ $1 == release ]]; then
            cargo build -q --release -p winsink-cli
        else
            cargo build -q -p winsink-cli
        fi
        WINSINK=${CARGO_TARGET_DIR:-target}/$1/winsink
    fi
    WINSINK=$(realpath "$WINSINK")
}

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

wait_dns() {
    local port=$1 name=$2 secs=${3:-10} _
    for _ in $(seq 1 $((secs * 10))); do
        dig +time=1 +tries=1 -p "$port" @127.0.0.1 "$name" A >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): nothing answers DNS on 127.0.0.1:$port within $secs s" >&2
    return 1
}

wait_log() {
    local file=$1 regex=$2 secs=${3:-10} _
    for _ in $(seq 1 $((secs * 20))); do
        grep -Eq "$regex" "$file" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "$(basename "$0"): no line of $file matches '$regex' within $secs s" >&2
    return 1
}

unbound_conf() {
    cat <<EOF
server:
    interface: 127.0.0.1
    port: $1
    do-ip6: no
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "$WORK"
    pidfile: ""
    use-syslog: no
    logfile: "${2:-}"
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
EOF
}

start_unbound() {
    local conf=$1 port=$2 name=$3
    shift 3
    unbound-checkconf "$conf" >/dev/null
    "$@" unbound -d -c "$conf" 2>>"$WORK/unbound.log" &
    UNBOUND_PID=$!
    track "$UNBOUND_PID"
    wait_dns "$port" "$name" 60
}

check() {
    local what=$1
    shift
    if "$@"; then
        PASSED=$((PASSED + 1))
        echo "ok   $what"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL $what"
        if [[ ${!#} == *$'\n'* ]]; then
            tail -n 12 <<<"${!#}" | sed 's/^/     | /'
        fi
    fi
}

summary() {
    echo "$1: $PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
}
