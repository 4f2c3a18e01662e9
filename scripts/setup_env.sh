#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install selconv_lite into it.
# requirements.txt is selconv_lite[all] with the reference pins, generated from pyproject.toml by
# scripts/sync_requirements.py; the package itself is then installed editable without
# re-resolving its dependencies. pip's offline torch 2.14.1 / torchvision 0.29.1 satisfy the pins.
# Idempotent: the install step is skipped when requirements.txt and pyproject.toml are unchanged.
# Usage: bash scripts/setup_env.sh            (sourced by run_main.sh and run_tests.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PYTHON:-python3}
VENV=${SELCONV_VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PY" -m venv "$VENV"
fi

stamp="$VENV/.selconv_requirements.sha256"
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing requirements (first run downloads/installs several GB for torch)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r requirements.txt
  "$VENV/bin/python" -m pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
else
  echo "[setup] environment up to date ($VENV)"
fi
