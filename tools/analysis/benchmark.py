"""Latency, throughput and peak memory of backbones and full models, side by side.

The models run in alternating rounds in one process (see :mod:`glmix_mm.analysis.benchmark` and
docs/benchmarks.md for what is measured and how). Examples::

    # CPU, inference, fp32, ours against the baselines at the COCO test size
    python tools/analysis/benchmark.py glnet-4g swin-t r50 convnext-t --shape 1x3x800x1280

    # ours against the authors' code with shared weights (outputs compared too)
    PYTHONPATH=/path/to/fairscale python tools/analysis/benchmark.py glnet-4g \
        upstream-glnet-4g --glmix-repo /tmp/GLMix --shape 8x3x224x224 --memory --markdown

    # GPU, a training step under bf16 autocast; a GLNet variant side by side with the default
    python tools/analysis/benchmark.py glnet-4g glnet-4g:mhsa_window=14 r50 --device cuda \
        --mode train --amp bf16 --shape 2x3x800x1280

    # torch.compile (inductor): compile time and compiled vs eager speed, side by side
    python tools/analysis/benchmark.py glnet-4g conformer-s32 --compile --shape 1x3x224x224

    # full detectors: predict on a synthetic 800x1280 image
    python tools/analysis/benchmark.py configs/maskrcnn_glnet_4g_coco.py \
        configs/maskrcnn_conformer_s16_coco.py --shape 1x3x800x1280 --repeats 5
"""
import sys

from glmix_mm.analysis import benchmark
from glmix_mm.utils import tool_main


@tool_main
def main(argv=None) -> int:
    benchmark.main(argv)
    return 0


if __name__ == '__main__':
    sys.exit(main())
