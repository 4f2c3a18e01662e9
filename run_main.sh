#!/usr/bin/env bash
# The main job: set up the environment, then run the notebook series 01-09 headless on the
# embedded default dataset. Executed notebooks, JSON results and summary.md go to outputs/
# (or the folder given as the first argument). Features are cached in cache/ and reused.
# Every image is fed at the paper's size (max_dim 1024; about 30 min from an empty cache on 2
# idle cores). Further arguments go to the series runner, e.g. the smaller, faster 512-px maps:
#   bash run_main.sh outputs/max512 --max-dim 512
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash scripts/setup_env.sh
OUT=${1:-outputs}
[ "$#" -gt 0 ] && shift
.venv/bin/python -m selconv_lite.teaching.series --out "$OUT" "$@"
