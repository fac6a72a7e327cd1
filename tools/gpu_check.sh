#!/usr/bin/env bash
# `clipswap-video gpu-check` on the GPU machine: the one command run there.
#
# Here, first:  make gpu-wheels     (fills .whl/ with what that machine lacks; tools/gpu_wheels.py)
# There, in the repository root, with .whl carried beside the working tree:
#   tools/gpu_check.sh [gpu-check options]        e.g.  tools/gpu_check.sh --small
# The results go to $OUT (the folder that comes back), else ./gpu-check-out.
#
# That machine's python3 (3.12, torch with CUDA) may be externally managed and has
# no network: the wheels go into a temporary folder with --no-index --no-deps, and
# the package runs from this source tree through PYTHONPATH, not installed (its
# version, configs/ and weights/manifest.toml are read from the tree).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shopt -s nullglob
wheels=("$root"/.whl/*.whl)
if ((${#wheels[@]} == 0)); then
    echo "gpu_check: no wheels in $root/.whl: run 'make gpu-wheels' and carry .whl" >&2
    exit 2
fi

site="$(mktemp -d "${TMPDIR:-/tmp}/clipswap-gpu-site.XXXXXX")"
trap 'rm -rf "$site"' EXIT
python3 -m pip install --quiet --no-index --no-deps --no-cache-dir --target "$site" "${wheels[@]}"

# The wheels first: they are the versions CI tests, also where the machine has its own.
export PYTHONPATH="$site:$root${PYTHONPATH:+:$PYTHONPATH}"
cd "$root"
python3 -m clipswap_video gpu-check --out "${OUT:-gpu-check-out}" "$@"
