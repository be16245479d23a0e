#!/usr/bin/env bash
# The Kubernetes manifests under deploy/kubernetes/, checked without a cluster:
#   - every manifest validates strictly (unknown fields are errors) against the schemas of
#     a current Kubernetes release, with kubernetes-validate (PyPI);
#   - checkov (PyPI) lints them, every check passing or skipped in the manifest with a reason;
#   - kustomization.yaml lists exactly the manifests in the folder;
#   - the ConfigMap's winsink.toml passes `winsink check`.
# The securityContext itself (no privilege escalation, every capability dropped but
# NET_BIND_SERVICE, the port sysctl, read-only root) is run on the real image by
# tests/container.sh, and the ConfigMap `..data` swap on the real binary by
# tests/service.rs (a_configmap_update_swapped_in_as_the_kubelet_does_is_reloaded).
#
#   bash tests/kubernetes.sh [WINSINK_BINARY]     # default: target/debug/winsink
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/debug/winsink}")
dir=deploy/kubernetes

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    kubernetes-validate checkov
scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')

mapfile -t manifests < <(find "$dir" -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml | sort)
version=$(python3 -c 'import kubernetes_validate.utils as u; print(u.latest_version())')
"$scripts/kubernetes-validate" --strict --kubernetes-version "$version" "${manifests[@]}"
echo "kubernetes-validate --strict (Kubernetes $version): ${#manifests[@]} manifests valid"

# --skip-download: no network calls to the vendor's platform (none is reachable in CI).
"$scripts/checkov" --quiet --compact --skip-download --framework kubernetes -d "$dir"
echo "checkov --framework kubernetes: no failed check"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$dir" "$tmp/winsink.toml" <<'EOF'
import os, sys, yaml
folder, out = sys.argv[1], sys.argv[2]
kust = yaml.safe_load(open(os.path.join(folder, "kustomization.yaml")))
listed = sorted(kust["resources"])
present = sorted(f for f in os.listdir(folder) if f.endswith(".yaml") and f != "kustomization.yaml")
assert listed == present, f"kustomization.yaml lists {listed}, the folder holds {present}"
maps = [d for d in yaml.safe_load_all(open(os.path.join(folder, "configmap.yaml"))) if d]
open(out, "w").write(maps[0]["data"]["winsink.toml"])
print(f"kustomization.yaml lists every manifest ({len(listed)})")
EOF
"$bin" check --config "$tmp/winsink.toml" >/dev/null
echo "configmap.yaml's winsink.toml: winsink check OK"
