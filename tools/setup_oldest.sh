#!/usr/bin/env bash
# The oldest stack glmix_mm supports, as most OpenMMLab users have it: Python 3.8, torch 2.1.2 /
# torchvision 0.16.2, mmcv 2.1.0 built for that torch, and the same MMEngine / MMDetection /
# MMSegmentation / MMPretrain pins as the main stack (requirements.txt). Made in its own virtual
# environment, .venv-oldest (VENV= to change), by tools/setup_env.sh; idempotent like it.
#
# The deployment extras (onnx 1.23, onnxruntime, MMDeploy) are not installed: they need a newer
# Python; their tests skip on this stack with that reason.
#
# pip's wheel cache keys a built wheel by its name and version, not by the torch it was compiled
# against: this stack installs with a pip cache of its own, named for its torch (PIP_CACHE_DIR to
# change), so no stack is ever handed an mmcv built for another torch (wrong ABI), and a new
# .venv-oldest on the same machine reuses its mmcv build (about 11 minutes) and torch download.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-$PWD/.venv-oldest}
PYTHON38=${PYTHON38:-$(command -v pyenv >/dev/null && pyenv root)/versions/3.8.18/bin/python}
if [ ! -x "$PYTHON38" ]; then
  PYTHON38=$(command -v python3.8 || true)
fi
if [ -z "$PYTHON38" ] || [ ! -x "$PYTHON38" ]; then
  echo "error: no Python 3.8 found; set PYTHON38=/path/to/python3.8 (pyenv install 3.8)" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON38" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --progress-bar off -q "pip<25"
fi
CACHE=${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/glmix_mm/pip-torch-2.1.2}
PIP_CACHE_DIR="$CACHE" PYTHON="$VENV/bin/python" TORCH=2.1.2 TORCHVISION=0.16.2 \
  WITH_DEPLOY=0 bash tools/setup_env.sh
