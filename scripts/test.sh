#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the test suite. Extra arguments go to pytest,
# e.g. `bash scripts/test.sh -m heavy` for the slow cases left out by default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the demo report's test opens the page in a real browser: Debian's Chromium (tests only)
if ! command -v chromium >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
. .venv/bin/activate
ruff check .
python -m pytest "$@"
