#!/usr/bin/env bash
# Installs a pinned CPU stack for glmix_mm into the current Python environment, then glmix_mm
# itself in editable mode. The stack: TORCH / TORCHVISION (default 2.12.1 / 0.27.1), NUMPY (a
# requirement, default "numpy>=2"; the oldest stack passes "numpy<2" because torch 2.1's wheels
# were built against numpy 1), WITH_DEPLOY=0 skips the deployment extras, TIMM / TRANSFORMERS
# (default 1.0.31 / 4.57.6; empty: not installed) the optional timm and Hugging Face
# transformers that glmix_mm.timm is tested with (docs/timm.md). tools/setup_venv.sh
# makes the other tested stacks in virtual environments with this script.
#
# Every pip call runs with these pins as constraints, so no step (mmengine pulls opencv-python,
# which pulls the newest numpy) replaces the stack's torch or numpy.
# Idempotent: a package already at the pinned version is left alone, so a second run takes
# seconds. The first run builds mmcv 2.1.0 with its C++ ops (tools/build_mmcv.py, about 11
# minutes on 2 cores); the wheel is cached per torch, so later environments install it in seconds.
#
# GPU users: install a CUDA build of torch first and build mmcv with CUDA ops instead
# (docs/get_started.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

TORCH=${TORCH:-2.12.1}
TORCHVISION=${TORCHVISION:-0.27.1}
NUMPY=${NUMPY:-numpy>=2}
WITH_DEPLOY=${WITH_DEPLOY:-1}
TIMM=${TIMM-1.0.31}
TRANSFORMERS=${TRANSFORMERS-4.57.6}
MMCV=2.1.0
MMDEPLOY=1.3.1

CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
printf 'torch==%s\ntorchvision==%s\n%s\n' "$TORCH" "$TORCHVISION" "$NUMPY" > "$CONSTRAINTS"

have() {  # have DIST VERSION -> true when DIST is installed at exactly VERSION
  [ "$($PY - "$1" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
print(version(sys.argv[1]))
PYEOF
)" = "$2" ]
}
pipi() { $PY -m pip install --progress-bar off -c "$CONSTRAINTS" "$@"; }

# 1. torch + torchvision from the registry's default build, pinned: a newer torch that pip may
#    prefer can lack a torchvision of the same build that imports; numpy as the stack wants it.
if ! have torch "$TORCH" || ! have torchvision "$TORCHVISION"; then
  pipi "torch==$TORCH" "torchvision==$TORCHVISION"
fi
pipi "$NUMPY"

# 2. mmcv 2.1.0 with its C++ ops, compiled for this torch and Python. Its setup.py imports
#    pkg_resources, so the build needs setuptools<70 (pip warns that torch's metadata asks for a
#    newer one; it works).
if ! have mmcv "$MMCV" || ! $PY -c 'import mmcv.ops' >/dev/null 2>&1; then
  pipi "setuptools<70" wheel ninja "mmengine==0.10.7"
  pipi "$($PY tools/build_mmcv.py)"
fi

# 3. The OpenMMLab libraries and the rest of the pinned stack, then glmix_mm itself.
pipi -r requirements.txt
pipi --no-deps --no-build-isolation -e .

# 4. Deployment (docs/deployment.md, tests/test_deploy): the `deploy` extra of setup.py (onnx,
#    onnxruntime, onnxscript), unless its pinned versions are all there; then MMDeploy 1.3.1
#    without its dependencies (its metadata pins protobuf<=3.20.2, which onnx 1.23 cannot use;
#    MMDeploy runs with the newer one) and the few it imports.
if [ "$WITH_DEPLOY" = 1 ]; then
if ! $PY - <<'PYEOF' 2>/dev/null
from importlib.metadata import requires, version
from packaging.requirements import Requirement
reqs = [Requirement(r.split(';')[0]) for r in requires('glmix_mm') if 'extra == "deploy"' in r]
assert reqs and all(r.specifier.contains(version(r.name), prereleases=True) for r in reqs)
PYEOF
then
  pipi --no-build-isolation -e ".[deploy]"
fi
if ! have mmdeploy "$MMDEPLOY"; then
  pipi --no-deps "mmdeploy==$MMDEPLOY"
  pipi aenum multiprocess prettytable terminaltables
fi
fi

# 5. timm and transformers for glmix_mm.timm (tests/test_timm, docs/timm.md): optional for users.
if [ -n "$TIMM" ] && ! have timm "$TIMM"; then pipi "timm==$TIMM"; fi
if [ -n "$TRANSFORMERS" ] && ! have transformers "$TRANSFORMERS"; then
  pipi "transformers==$TRANSFORMERS"
fi

$PY -c 'import glmix_mm, mmdet.models, mmseg.models, mmpretrain.models, mmcv.ops, numpy, torch
print(f"glmix_mm set-up OK: torch {torch.__version__}, numpy {numpy.__version__}")'
