"""Run a detector or a segmentor on one image and save the drawn result (mmdet / mmseg
visualizers; the config's ``default_scope`` decides which).

Example::

    python tools/image_demo.py demo.png configs/demo/maskrcnn_glnet_4g_demo.py \
        work_dirs/maskrcnn_glnet_4g_demo/epoch_4.pth --out result.png

A checkpoint that does not fit the config's model is refused with the key report (drawing with
random weights is never what is wanted); --allow-partial loads the keys that fit and warns.
"""
import argparse
import os.path as osp
import sys

import mmcv
from mmengine.config import Config

import glmix_mm  # noqa: F401  (registers the models)
from glmix_mm.checkpoint import CheckpointNotFoundError, check_file
from glmix_mm.errors import GLMixMMError, UsageError
from glmix_mm.runner import build_model_from_cfg
from glmix_mm.utils import read_config, tool_main

HINT = ('Is it a checkpoint of this config (same backbone arch, same number of classes)? '
        '--allow-partial draws with the keys that fit anyway.')


def detect(image, cfg: Config, checkpoint: str, out: str, score_thr: float,
           device: str) -> None:
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    model = init_detector(cfg, checkpoint, device=device)
    result = inference_detector(model, image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample('result', mmcv.bgr2rgb(image), result, draw_gt=False,
                              pred_score_thr=score_thr, out_file=out)


def segment(image, cfg: Config, checkpoint: str, out: str, device: str) -> None:
    from mmseg.apis import inference_model, init_model
    from mmseg.registry import VISUALIZERS
    model = init_model(cfg, checkpoint, device=device)
    result = inference_model(model, image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample('result', mmcv.bgr2rgb(image), result, draw_gt=False,
                              out_file=out)


def read_image(path: str):
    """The image as 8-bit BGR, read as the test pipeline reads files (mmcv: grayscale and
    palette images become 3-channel, 16-bit ones are scaled to 8 bits, alpha is dropped).

    Raises:
        GLMixMMError: The file is not an image (OpenCV raises on an empty file).
    """
    try:
        image = mmcv.imread(path)
    except Exception:
        image = None
    if image is None:
        raise GLMixMMError(f'{path!r} ({osp.getsize(path)} bytes) is not an image file that can '
                           'be read (PNG, JPEG, BMP, TIFF, ...)')
    return image


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Detection or segmentation on one image.')
    parser.add_argument('image', help='input image')
    parser.add_argument('config', help='detection or segmentation config')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--out', default='result.png', help='output PNG')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection score threshold')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--allow-partial', action='store_true',
                        help='draw even with a checkpoint that does not fit the model (warns)')
    return parser.parse_args(argv)


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    for path, what in ((args.image, 'image'), (args.config, 'config')):
        if not osp.isfile(path):
            raise UsageError(f'{what} {path!r} does not exist')
    if not osp.isfile(args.checkpoint):
        raise CheckpointNotFoundError(f'checkpoint {args.checkpoint!r} does not exist')
    image = read_image(args.image)
    cfg = read_config(args.config)
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg'):
        raise UsageError(f'{args.config} is a {scope!r} config; image_demo.py draws mmdet and '
                         'mmseg results only')
    # mmdet's and mmseg's init functions load any file that half fits, silently.
    check_file(build_model_from_cfg(cfg), args.checkpoint, args.allow_partial, HINT)
    if scope == 'mmdet':
        detect(image, cfg, args.checkpoint, args.out, args.score_thr, args.device)
    else:
        segment(image, cfg, args.checkpoint, args.out, args.device)
    print(f'saved {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
