#!/usr/bin/env bash
# The service files under packaging/, checked with the tools that will read them:
#   - systemd-analyze verify on packaging/systemd/winsink.service (unit syntax, every
#     directive known, ExecStart/ExecReload executables present, Documentation= man pages
#     found - the ones `winsink man` generates);
#   - systemd-analyze security: its exposure score, which must stay below 2.0 ("OK");
#   - logrotate --debug on packaging/logrotate/winsink (parses, nothing rotated).
#
#   bash tests/packaging.sh [WINSINK_BINARY]     # default: target/debug/winsink
#
# The unit names /usr/local/bin/winsink, where the README's install puts it; verify needs
# an executable there, so it checks a copy with that one path pointing at the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/debug/winsink}")
unit=packaging/systemd/winsink.service
. tests/lib.sh
workdir winsink-packaging
tmp=$WORK

mkdir -p "$tmp/man/man1"
"$bin" man --out-dir "$tmp/man/man1"
sed "s|/usr/local/bin/winsink|$bin|g" "$unit" >"$tmp/winsink.service"
changed=$(diff "$unit" "$tmp/winsink.service" | grep '^>' || true)
[[ $(wc -l <<<"$changed") -eq 1 && $changed == "> ExecStart=$bin "* ]] \
    || { echo "packaging.sh: expected exactly one ExecStart= naming /usr/local/bin/winsink" >&2; exit 1; }
if command -v man >/dev/null; then man=yes; else man=no; fi
MANPATH="$tmp/man" systemd-analyze verify --man="$man" "$tmp/winsink.service"
echo "systemd-analyze verify $unit: clean (man pages checked: $man)"

# --threshold is the exposure level times ten: 20 = 2.0.
systemd-analyze security --offline=true --threshold=20 "$unit" >"$tmp/security.txt" 2>&1 \
    || { cat "$tmp/security.txt"; echo "systemd-analyze security: exposure above 2.0" >&2; exit 1; }
grep -a 'Overall exposure level' "$tmp/security.txt"

logrotate --debug --state "$tmp/logrotate.state" packaging/logrotate/winsink 2>"$tmp/logrotate.txt" \
    || { cat "$tmp/logrotate.txt"; exit 1; }
echo "logrotate --debug packaging/logrotate/winsink: parses"

# A real rotation under a running winsink: the shipped rules, with the path pointed at a
# temp folder and the postrotate signal at this winsink's pid. The line of a query asked
# after the rotation must be in the new file, the one before it in the rotated file.
port=$(free_port)
mkdir -p "$tmp/log"
printf 'catalogs = ["builtin:windows11-enterprise"]\n[areas]\ndiagnostic-data = "block"\n[log]\nformat = "json"\nfile = "%s"\n' \
    "$tmp/log/queries.log" >"$tmp/winsink.toml"
"$bin" run --config "$tmp/winsink.toml" --listen "127.0.0.1:$port" --http off \
    --upstream udp://127.0.0.1:9 2>"$tmp/winsink.err" &
winsink=$!
track "$winsink"
ask() { dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 "$1" A >/dev/null 2>&1; }
wait_dns "$port" watson.events.data.microsoft.com
ask before.events.data.microsoft.com
# In the log before rotating (the writer flushes within a fraction of a second).
wait_log "$tmp/log/queries.log" before 5 || true
sed -e "s|/var/log/winsink/\*.log|$tmp/log/*.log|" \
    -e "s|systemctl kill .*|kill -HUP $winsink|" packaging/logrotate/winsink >"$tmp/logrotate.conf"
logrotate --force --state "$tmp/logrotate.state" "$tmp/logrotate.conf"
ask after.events.data.microsoft.com
wait_log "$tmp/log/queries.log" after 5 || true
grep -q '"qname":"after.events.data.microsoft.com"' "$tmp/log/queries.log" \
    || { echo "logrotate: the line after the rotation is not in the new file" >&2; cat "$tmp/winsink.err" >&2; exit 1; }
grep -q '"qname":"before.events.data.microsoft.com"' "$tmp/log/queries.log.1" \
    || { echo "logrotate: the line before the rotation is not in queries.log.1" >&2; exit 1; }
! grep -q after "$tmp/log/queries.log.1" \
    || { echo "logrotate: a line after the rotation went to the rotated file" >&2; exit 1; }
kill "$winsink"
wait "$winsink" || true
echo "logrotate --force with packaging/logrotate/winsink: winsink writes on in the new file"
