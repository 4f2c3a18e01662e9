#!/usr/bin/env bash
# Autograde the submissions of the course, each one's code isolated (grading.py), then optionally
# write the feedback. Run as root in the course folder or a copy of it:
#
#   bash grade.sh a1_features_masks [a2_embedding_aggregation ...]              # autograde
#   bash grade.sh --feedback a1_features_masks                                 # feedback (after hand-grading)
#   bash grade.sh --feedback --force a1_features_masks                         # feedback even if answers wait
#
# Python: $SELCONV_PYTHON, else the repository's .venv next to this folder, else python3 on PATH;
# it must have nbgrader (bash scripts/setup_env.sh). The sandbox needs bubblewrap
# (bash scripts/setup_course.sh installs it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
feedback=0; force=0; assignments=()
for arg in "$@"; do
  case "$arg" in
    --feedback) feedback=1 ;;
    --force) force=1 ;;
    -*) echo "grade.sh: unknown option $arg" >&2; exit 2 ;;
    *) assignments+=("$arg") ;;
  esac
done
if [ ${#assignments[@]} -eq 0 ]; then
  echo "usage: bash grade.sh [--feedback [--force]] ASSIGNMENT..." >&2; exit 2
fi
PY="${SELCONV_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x ../.venv/bin/python ]; then PY="$(cd .. && pwd)/.venv/bin/python"; else PY="$(command -v python3)"; fi
fi
"$PY" -c "import nbgrader" 2>/dev/null || { echo "grade.sh: $PY has no nbgrader (set SELCONV_PYTHON)" >&2; exit 1; }
export PATH="$(dirname "$PY"):$PATH"   # nbgrader runs alembic (the gradebook migrations) by name
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
for a in "${assignments[@]}"; do
  if [ "$feedback" = 1 ]; then
    if ! "$PY" gradebook_tools.py pending "$a"; then
      if [ "$force" = 0 ]; then
        echo "grade.sh: written answers of $a are not graded yet (formgrader), so their feedback would show 0;" \
             "grade them first or pass --force" >&2
        exit 1
      fi
      echo "grade.sh: warning: writing feedback of $a before every written answer is graded" >&2
    fi
    "$PY" -m nbgrader generate_feedback "$a" --force
  else
    "$PY" -c "import sys; sys.path.insert(0, '.'); import grading; p = grading.sandbox_problem(); print('grade.sh: ' + p, file=sys.stderr) if p else None; sys.exit(1 if p else 0)"
    "$PY" -m nbgrader autograde "$a" --force
  fi
done
