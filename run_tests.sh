#!/usr/bin/env bash
# Set up the environment, then run the whole test suite: unit tests, nbval on every notebook
# against its committed outputs, the notebooks' measured numbers against their references within
# stated tolerances, and last the browser tests: the widget explorer (it runs notebook 02 in
# JupyterLab, so it comes after nbval has filled the feature cache) and the course's formgrader
# (manual grading with the rubric visible).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash scripts/setup_env.sh
bash scripts/setup_browser.sh || echo "[tests] no headless Chromium: the browser test will report it"
bash scripts/setup_course.sh || echo "[tests] no bubblewrap: the course autograding tests will report it"
.venv/bin/python -m pytest tests --ignore=tests/browser "$@"
# nbval: every notebook re-executed (2 threads, headless; notebooks/conftest.py) and its outputs
# compared with the committed ones, measured floats sanitised out. The notebooks' JSON records
# go to a fresh folder, whose numbers are then compared with notebooks/reference/ within the
# tolerances of notebooks/reference/tolerances.toml.
RECORDS="$(mktemp -d "${TMPDIR:-/tmp}/selconv-records.XXXXXX")"
trap 'rm -rf "$RECORDS"' EXIT
nbval_rc=0
SELCONV_OUTPUT="$RECORDS" .venv/bin/python -m pytest --nbval notebooks/ \
    --nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider || nbval_rc=$?
records_rc=0
SELCONV_RECORDS_DIR="$RECORDS" .venv/bin/python -m pytest tests/notebook_records -p no:cacheprovider || records_rc=$?
.venv/bin/python -m pytest tests/browser -p no:cacheprovider
if [ "$nbval_rc" -ne 0 ] || [ "$records_rc" -ne 0 ]; then
    exit 1
fi
