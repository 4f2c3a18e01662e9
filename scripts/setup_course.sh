#!/usr/bin/env bash
# Install bubblewrap (bwrap), which the course's autograding needs to run each submission's code
# in a sandbox as the user nobody (course/grading.py), if missing. Needs root and apt-get; on other
# machines install bubblewrap yourself, or course/grade.sh and tests/test_course.py report it.
set -euo pipefail
if command -v bwrap >/dev/null 2>&1; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[setup] installing bubblewrap from Debian (sandbox of the course's autograding)"
  (apt-get update -qq || true) >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
else
  echo "[setup] cannot install bubblewrap (needs root + apt-get)" >&2
  exit 1
fi
