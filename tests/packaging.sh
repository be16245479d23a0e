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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

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
