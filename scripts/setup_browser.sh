#!/usr/bin/env bash
# Install Debian's headless Chromium + ChromeDriver for the widget browser test, if missing.
# Needs root and apt-get; on other machines install chromium yourself or the test is skipped.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[setup] installing chromium and chromium-driver from Debian"
  (apt-get update -qq || true) >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "[setup] cannot install chromium (needs root + apt-get)" >&2
  exit 1
fi
