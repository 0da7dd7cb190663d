#!/usr/bin/env bash
# Creates .venv with everything d2e and its tests need; safe to run again (it only adds what is missing).
# Usage: bash scripts/setup.sh [EXTRAS]   (default extras: record,sources,train,ray,owa,nav,libero,dev)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-record,sources,train,ray,owa,nav,libero,dev}"

# System packages for the X11 recorder tests (virtual screen + input injection). Skipped when present.
need=()
command -v Xvfb >/dev/null || need+=(xvfb)
command -v xdotool >/dev/null || need+=(xdotool)
command -v xset >/dev/null || need+=(x11-xserver-utils)   # key-repeat settings in recording metadata
ldconfig -p | grep -q libtk8.6 || need+=(libtk8.6)      # the Tk test app of the recorder tests
# MiniWorld renders headless through EGL (Mesa's software renderer on a machine without a GPU) and GLU
ldconfig -p | grep -q libEGL_mesa || need+=(libegl1 libegl-mesa0 libgl1-mesa-dri)
ldconfig -p | grep -q libGLU.so.1 || need+=(libglu1-mesa)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || py=python3
[ -x .venv/bin/python ] || "$py" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# The CPU build of torch first: an open range would pull a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || pip install -q torch==2.13.0
pip install -q -e ".[${extras}]"
echo "setup done: . .venv/bin/activate"
