#!/usr/bin/env bash
# Makes one of the tested stacks besides the machine's own Python in a virtual environment of its
# own, with tools/setup_env.sh (idempotent like it):
#
#   bash tools/setup_venv.sh oldest   # .venv-oldest: Python 3.8, torch 2.1.2 / torchvision 0.16.2,
#                                     # numpy<2 (torch 2.1's wheels were built against numpy 1);
#                                     # no deployment extras (onnx 1.23, onnxruntime 1.32 and
#                                     # MMDeploy need a newer Python)
#   bash tools/setup_venv.sh py313    # .venv-py313: Python 3.13, torch 2.12.1 / torchvision 0.27.1,
#                                     # numpy 2, the deployment extras
# (each with the timm and transformers releases glmix_mm.timm is tested with there)
#   bash tools/setup_venv.sh py312    # .venv-py312: the same on Python 3.12
#
# Both use the same OpenMMLab pins as the main stack (requirements.txt) and mmcv 2.1.0 compiled for
# their torch and Python (tools/build_mmcv.py caches that build per torch). VENV= picks another
# folder; PYTHON_FOR_VENV=/path/to/pythonX.Y another interpreter (default: pyenv's, else
# pythonX.Y on the PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
STACK=${1:-}
case "$STACK" in
  oldest) PYV=3.8 TORCH=2.1.2 TORCHVISION=0.16.2 NUMPY='numpy<2' WITH_DEPLOY=0 TIMM=1.0.30
          TRANSFORMERS=4.46.3 ;;  # the newest timm / transformers releases for Python 3.8
  py312|py313) PYV=3.${STACK#py3} TORCH=2.12.1 TORCHVISION=0.27.1 NUMPY='numpy>=2' WITH_DEPLOY=1
               TIMM=1.0.31 TRANSFORMERS=4.57.6 ;;
  *) echo "usage: bash tools/setup_venv.sh oldest|py312|py313" >&2; exit 2 ;;
esac
VENV=${VENV:-$PWD/.venv-$STACK}

find_python() {  # the newest pyenv Python X.Y, else pythonX.Y on the PATH
  local found=""
  if command -v pyenv >/dev/null; then
    found=$(ls -d "$(pyenv root)/versions/$PYV".*/bin/python 2>/dev/null | sort -V | tail -n 1)
  fi
  [ -n "$found" ] || found=$(command -v "python$PYV" || true)
  echo "$found"
}
BASE=${PYTHON_FOR_VENV:-$(find_python)}
if [ -z "$BASE" ] || [ ! -x "$BASE" ]; then
  echo "error: no Python $PYV found; set PYTHON_FOR_VENV=/path/to/python$PYV" \
    "(or: pyenv install $PYV)" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$BASE" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --progress-bar off -q "pip<25"
fi
export TORCH TORCHVISION NUMPY WITH_DEPLOY TIMM TRANSFORMERS
PYTHON="$VENV/bin/python" bash tools/setup_env.sh
