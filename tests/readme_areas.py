#!/usr/bin/env python3
"""The README's table of catalog areas, generated so that it cannot drift.

Rows come from the shipped catalog (policies/windows11-enterprise.toml: id, name, endpoint
patterns); "Blocking it breaks" and "Shipped" come from config/winsink.toml, where each
area line carries a comment saying what blocking it breaks. The table sits in README.md
between the `<!-- areas:begin -->` and `<!-- areas:end -->` markers.

    python3 tests/readme_areas.py           # rewrite the table in README.md
    python3 tests/readme_areas.py --check   # exit 1 (with a diff) if README.md is stale
"""

import difflib
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "policies" / "windows11-enterprise.toml"
CONFIG = ROOT / "config" / "winsink.toml"
README = ROOT / "README.md"
BEGIN, END = "<!-- areas:begin -->", "<!-- areas:end -->"
SHOWN_PATTERNS = 3


def area_comments(config_text):
    """Area id -> (the comment lines above its `id = "action"` line, action)."""
    out = {}
    in_areas = False
    comment = []
    for line in config_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            in_areas = stripped.startswith("[areas]")
            comment = []
            continue
        if not in_areas:
            continue
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
        elif "=" in stripped:
            key = stripped.split("=", 1)[0].strip().strip('"')
            # `id = "action"` or `id = { action = "...", acknowledge_shared = [...] }`.
            value = tomllib.loads(stripped)[key]
            action = value["action"] if isinstance(value, dict) else value
            out[key] = (" ".join(comment), action)
            comment = []
        else:
            comment = []
    return out


def table():
    catalog = tomllib.loads(CATALOG.read_text(encoding="utf-8"))
    comments = area_comments(CONFIG.read_text(encoding="utf-8"))
    rows = [
        "| Area id | Area | Endpoints | For example | Blocking it breaks | Shipped |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    missing = []
    for area in catalog["area"]:
        patterns = []
        for endpoint in area.get("endpoint", []):
            if endpoint["pattern"] not in patterns:
                patterns.append(endpoint["pattern"])
        shown = ", ".join(f"`{p}`" for p in patterns[:SHOWN_PATTERNS])
        if len(patterns) > SHOWN_PATTERNS:
            shown += ", …"
        breaks, action = comments.get(area["id"], (None, None))
        if breaks is None:
            missing.append(area["id"])
            continue
        rows.append(
            f"| `{area['id']}` | {area['name']} | {len(area.get('endpoint', []))} "
            f"| {shown} | {breaks} | `{action}` |"
        )
    if missing:
        sys.exit(f"config/winsink.toml has no commented line for area(s): {', '.join(missing)}")
    return "\n".join(rows)


def main():
    readme = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r"\n(?:.*?\n)?" + re.escape(END), re.S)
    if not pattern.search(readme):
        sys.exit(f"README.md has no {BEGIN} ... {END} block")
    fresh = pattern.sub(lambda _: f"{BEGIN}\n{table()}\n{END}", readme)
    if "--check" in sys.argv[1:]:
        if fresh != readme:
            sys.stdout.writelines(
                difflib.unified_diff(
                    readme.splitlines(True), fresh.splitlines(True), "README.md", "README.md (regenerated)"
                )
            )
            print("README.md's area table is stale: run python3 tests/readme_areas.py")
            return 1
        print("README.md's area table matches the catalog and config/winsink.toml")
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
