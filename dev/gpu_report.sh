#!/usr/bin/env bash
# The GPU report (docs/benchmarks.md, "GPU report"): GLNet-4G / 9G against Swin-T, ResNet-50 and
# ConvNeXt-T, eager and torch.compile'd, bf16, inference and a training step at 64x3x224x224 and
# 2x3x800x1280, in at most 8 minutes; one markdown table, printed and written to --out.
#
#   bash dev/gpu_report.sh [--out FILE] [--dry-run] [other gpu_report.py options]
#
# Where mmengine, mmcv, mmdet or mmpretrain do not import (a GPU machine with torch alone), it
# first installs the wheels of dev/fetch_gpu_wheels.sh from $GLMIX_GPU_WHEELS
# (default: .gpu_wheels/ in the repository) into a folder of its own, without dependencies and
# without the network; mmcv-lite stands in for mmcv. --dry-run checks the whole script on the
# CPU with tiny inputs.
set -eo pipefail
START=$(date +%s)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
WHEELS="${GLMIX_GPU_WHEELS:-$ROOT/.gpu_wheels}"

if ! "$PY" -c "import mmengine, mmcv, mmdet, mmpretrain" >/dev/null 2>&1; then
    if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        echo "gpu_report: mmengine/mmcv/mmdet/mmpretrain are not installed and $WHEELS has no" \
             "wheels: run dev/fetch_gpu_wheels.sh where PyPI is reachable and bring" \
             "that folder along (or set GLMIX_GPU_WHEELS)." >&2
        exit 2
    fi
    SITE="${TMPDIR:-/tmp}/glmix_gpu_site"
    echo "gpu_report: installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into $SITE" >&2
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$WHEELS"/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # glmix_mm where it is not installed
exec "$PY" "$ROOT/dev/gpu_report.py" --started-at "$START" "$@"
