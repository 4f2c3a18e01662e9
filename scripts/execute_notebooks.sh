#!/usr/bin/env bash
# Re-execute the committed notebooks in place and rewrite the regression references.
#
#   bash scripts/execute_notebooks.sh              # every notebook
#   bash scripts/execute_notebooks.sh 01 05        # only those whose name starts with 01 / 05
#
# Runs notebooks/NN_*.ipynb with papermill in the CI's conditions: notebooks/ as the working
# folder, headless (SELCONV_HEADLESS=1), offline, 2 threads for torch / OpenMP / BLAS
# (SELCONV_THREADS), the shared feature cache. Outputs are written into the notebooks
# themselves (execution timestamps stripped), the JSON records into outputs/executed/, and
# notebooks/reference/NN_*.json is rewritten from those records when every notebook succeeded.
# The widget state of the progress bars (metadata.widgets) is never kept: the series runner drops
# it from each notebook it writes in place, and the last step strips it from every notebook
# (python -m selconv_lite.teaching.nbcheck strip-widgets; tests/test_notebook_hygiene.py checks).
# Prints each notebook's time and the total. Commit the notebooks together with the references.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SELCONV_THREADS="${SELCONV_THREADS:-2}"
args=(--in-place --update-references --out "${SELCONV_EXECUTE_OUT:-outputs/executed}" --threads "$SELCONV_THREADS")
if [ "$#" -gt 0 ]; then
    args+=(--only "$@")
fi
status=0
.venv/bin/python -m selconv_lite.teaching.series "${args[@]}" || status=$?
.venv/bin/python -m selconv_lite.teaching.nbcheck strip-widgets notebooks/
exit "$status"
