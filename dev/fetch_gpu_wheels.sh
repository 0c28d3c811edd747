#!/usr/bin/env bash
# Download, where PyPI is reachable, the wheels that dev/gpu_report.sh installs on a
# GPU machine that has torch but none of the OpenMMLab packages (Python 3.12, x86-64 Linux by
# default): mmengine, mmcv-lite (mmcv without compiled ops: the backbones need none), mmdet (Swin-T,
# ResNet-50), mmpretrain (ConvNeXt-T, and the blocks of our Conformer), and the dependencies of
# theirs that such a machine lacks. About 9 MB, into a git-ignored folder.
#
#   bash dev/fetch_gpu_wheels.sh [DEST]     # default DEST: .gpu_wheels/
#   GPU_PYTHON_VERSION=3.11 bash dev/fetch_gpu_wheels.sh   # another Python
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.gpu_wheels}"
PYVER="${GPU_PYTHON_VERSION:-3.12}"
mkdir -p "$DEST"
COMMON=(--no-deps --only-binary=:all: --python-version "$PYVER" -d "$DEST")

# Pure Python. The last six are needed by mmengine (addict, termcolor, yapf, platformdirs),
# mmpretrain (importlib-metadata, model-index with ordered-set) and mmdet (terminaltables).
python3 -m pip download "${COMMON[@]}" \
    mmengine==0.10.7 mmcv-lite==2.1.0 mmdet==3.3.0 mmpretrain==1.2.0 \
    addict==2.4.0 termcolor==3.3.0 yapf==0.43.0 platformdirs==4.14.9 \
    importlib-metadata==8.5.0 model-index==0.1.11 ordered-set==4.1.0 terminaltables==3.1.10
# Compiled, imported by mmdet at import time (mask structures).
python3 -m pip download "${COMMON[@]}" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    pycocotools==2.0.11 shapely==2.2.0
echo "fetch_gpu_wheels: $(ls "$DEST"/*.whl | wc -l) wheels in $DEST ($(du -sh "$DEST" | cut -f1))"
