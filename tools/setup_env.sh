#!/usr/bin/env bash
# Installs the pinned CPU stack for glmix_mm into the current Python environment, then glmix_mm
# itself in editable mode. TORCH / TORCHVISION override the torch pair and WITH_DEPLOY=0 skips the
# deployment extras (tools/setup_oldest.sh uses both for the oldest supported stack).
# Idempotent: a package already at the pinned version is left alone, so a second run takes
# seconds. The first run builds mmcv 2.1.0 with its C++ ops from source (most of
# the first run's time, docs/get_started.md); pip caches the wheel so later installs on the same
# machine are fast.
#
# GPU users: install a CUDA build of torch first and build mmcv with CUDA ops instead (README).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

TORCH=${TORCH:-2.12.1}
TORCHVISION=${TORCHVISION:-0.27.1}
WITH_DEPLOY=${WITH_DEPLOY:-1}
MMCV=2.1.0
MMDEPLOY=1.3.1

have() {  # have DIST VERSION -> true when DIST is installed at exactly VERSION
  [ "$($PY - "$1" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
print(version(sys.argv[1]))
PYEOF
)" = "$2" ]
}
pipi() { $PY -m pip install --progress-bar off "$@"; }

# 1. torch + torchvision from the registry's default build, pinned: a newer torch that pip may
#    prefer can lack a torchvision of the same build that imports.
if ! have torch "$TORCH" || ! have torchvision "$TORCHVISION"; then
  pipi "torch==$TORCH" "torchvision==$TORCHVISION"
fi

# 2. mmcv 2.1.0 with its C++ ops. Its setup.py imports pkg_resources, so the build needs
#    setuptools<70 (pip warns that torch's metadata asks for a newer one; it works).
if ! have mmcv "$MMCV" || ! $PY -c 'import mmcv.ops' >/dev/null 2>&1; then
  pipi "setuptools<70" wheel "numpy<2" ninja
  pipi "mmengine==0.10.7"
  MMCV_WITH_OPS=1 MAX_JOBS=2 pipi --no-build-isolation "mmcv==$MMCV"
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
  pipi --no-build-isolation -e ".[deploy]" "numpy<2"
fi
if ! have mmdeploy "$MMDEPLOY"; then
  pipi --no-deps "mmdeploy==$MMDEPLOY"
  pipi aenum multiprocess prettytable terminaltables "numpy<2"
fi
fi

$PY -c 'import mmdet.models, mmseg.models, mmpretrain.models, mmcv.ops, glmix_mm
print("glmix_mm set-up OK")'
