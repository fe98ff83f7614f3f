#!/usr/bin/env bash
# h4tracks with Cellpose 4 (Cellpose-SAM) instead of its default Cellpose 3, in a venv of its
# own: installs h4tracks, then cellpose>=4,<5 over it (as a user would, docs/engines.md), and
# runs tests/cellpose4, which builds a random-weight network of cpsam's shape, saves it to a
# file, registers it as a model and segments one 64² frame through the API and the CLI.
#
#   bash scripts/ci-cellpose4.sh           # from the repository root; prints pytest's summary
#
# CP4VENV=DIR keeps the venv in DIR (reused when it is already there); by default it is a
# fresh temporary folder, removed at the end. No weights are downloaded (the cpsam weights
# are CC-BY-NC 4.0 and come from the internet on first use; the tests never need them).
#
# Why torch 2.14.1 here and not the project's torch==2.13.0 CPU build: Cellpose 4 imports
# torchvision, and torchvision's Linux wheels on PyPI are built for the CUDA build of torch
# (with the CPU build, `import torchvision` fails: "operator torchvision::nms does not
# exist"). The CUDA build of torch runs on the CPU as well; it is a few GB of disk in this
# venv only.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start=$(date +%s)
if [[ -n "${CP4VENV:-}" ]]; then
    venv="$CP4VENV"
else
    venv="$(mktemp -d "${TMPDIR:-/tmp}/h4tracks-cp4.XXXXXX")"
    trap 'rm -rf "$venv"' EXIT
fi

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
install() {  # pip install "$@", its expected noise left out; fails when pip fails
    local log
    log="$(mktemp)"
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
            >"$log" 2>&1; then
        cat "$log"
        rm -f "$log"
        return 1
    fi
    grep -v -e "^WARNING: Location" -e "dependency resolver" -e "requires cellpose<4" \
        "$log" || true
    rm -f "$log"
}
# the pinned pair first, so that nothing later picks another torch
install "torch==2.14.1" "torchvision==0.29.1"
install -e "$repo[testing]"
# Cellpose 4 over h4tracks' cellpose<4 pin: pip installs it and reports the pin as a
# conflict, which is expected here (h4tracks runs with both; a plain install keeps Cellpose 3)
install "cellpose>=4,<5" "torch==2.14.1" "torchvision==0.29.1"
"$venv/bin/python" - <<'EOF'
from importlib.metadata import version
assert version("cellpose").startswith("4."), version("cellpose")
print("cellpose", version("cellpose"), "torch", version("torch"))
EOF
echo "ci-cellpose4: venv ready after $(( $(date +%s) - start )) s"

cd "$repo"
# no display needed; pytest's summary is the script's last line (CI reads it)
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/cellpose4 "$@"
