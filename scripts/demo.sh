#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job on embedded defaults: `d2e demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
d2e demo "$@"
