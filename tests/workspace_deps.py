#!/usr/bin/env python3
"""Fails when the root Cargo.toml declares a [workspace.dependencies] entry that no crate
under crates/ takes, or when a crate names a version itself instead of taking the
workspace's (`name.workspace = true`). cargo-machete checks each crate's own list."""
import glob
import sys
import tomllib

with open("Cargo.toml", "rb") as f:
    declared = set(tomllib.load(f)["workspace"]["dependencies"])
used, problems = set(), []
for manifest in sorted(glob.glob("crates/*/Cargo.toml")):
    with open(manifest, "rb") as f:
        crate = tomllib.load(f)
    tables = [crate.get(k, {}) for k in ("dependencies", "dev-dependencies", "build-dependencies")]
    tables += [
        t.get(k, {})
        for t in crate.get("target", {}).values()
        for k in ("dependencies", "dev-dependencies", "build-dependencies")
    ]
    for table in tables:
        for name, spec in table.items():
            if isinstance(spec, dict) and spec.get("workspace"):
                used.add(name)
            else:
                problems.append(f"{manifest}: {name} does not come from [workspace.dependencies]")
problems += [f"Cargo.toml: [workspace.dependencies] {n} is used by no crate" for n in sorted(declared - used)]
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
