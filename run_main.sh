#!/usr/bin/env bash
# The main job: set up the environment, then run the notebook series 01-08 headless on the
# embedded default dataset. Executed notebooks, JSON results and summary.md go to outputs/
# (or the folder given as the first argument). Features are cached in cache/ and reused.
# Further arguments go to the series runner, e.g. the paper's image size:
#   bash run_main.sh outputs/max1024 --max-dim 1024
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash scripts/setup_env.sh
OUT=${1:-outputs}
[ "$#" -gt 0 ] && shift
.venv/bin/python -m selconv_lite.teaching.series --out "$OUT" "$@"
