"""Parameters and FLOPs of a GLNet / Conformer backbone, or of a whole model from a config.

What is counted and how: :mod:`glmix_mm.analysis.flops` and docs/benchmarks.md.

Examples::

    python tools/analysis/get_flops.py --arch glnet-4g                 # 224x224
    python tools/analysis/get_flops.py --arch conformer-s32 --shape 256 320 --batch 2
    python tools/analysis/get_flops.py --all-archs                     # README table
    python tools/analysis/get_flops.py configs/maskrcnn_glnet_4g_coco.py --shape 800 1280
    python tools/analysis/get_flops.py configs/upernet_glnet_4g_ade20k.py --shape 512 2048
    python tools/analysis/get_flops.py configs/maskrcnn_glnet_4g_coco.py --backbone-only
"""
import sys

from glmix_mm.analysis.flops import main

if __name__ == '__main__':
    sys.exit(main())
