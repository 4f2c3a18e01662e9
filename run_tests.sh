#!/usr/bin/env bash
# Set up the environment, then run the whole test suite: unit tests, the browser test of the
# widget explorer, and nbval on every notebook against its committed outputs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash scripts/setup_env.sh
bash scripts/setup_browser.sh || echo "[tests] no headless Chromium: the browser test will report it"
.venv/bin/python -m pytest tests "$@"
.venv/bin/python -m pytest --nbval notebooks/ --nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider
