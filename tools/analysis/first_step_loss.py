"""First-step loss and gradient norm of a detector, with and without GLNet's output norms.

Why the detection configs put a norm on every backbone output: compare the first training step
of Mask R-CNN on random images with the raw stage outputs (``out_norm=None``), with per-output
LayerNorms (the configs' choice), and with mmdet's ResNet-50.

    python tools/analysis/first_step_loss.py [--size 256] [--batch 4]
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import init_default_scope

import glmix_mm  # noqa: F401  (registers the models)
from glmix_mm.utils.cli import at_least, tool_main

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

VARIANTS = {
    'GLNet-4G, raw stage outputs (out_norm=None)': dict(out_norm=None),
    'GLNet-4G, LayerNorm per output (configs)': dict(),
    'ResNet-50 (mmdet)': 'resnet',
}


def fake_batch(model, batch: int, size: int, seed: int = 0) -> dict:
    """Random images with three random boxes and box-shaped masks each."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(batch):
        xy = torch.rand(3, 2, generator=gen) * size * 0.6
        wh = torch.rand(3, 2, generator=gen) * size * 0.3 + 16
        boxes = torch.cat([xy, xy + wh], 1)
        masks = torch.zeros(3, size, size, dtype=torch.uint8)
        for m, (x0, y0, x1, y1) in zip(masks, boxes.long().tolist()):
            m[y0:y1, x0:x1] = 1
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.randint(0, 80, (3, ), generator=gen),
            masks=BitmapMasks(masks.numpy(), size, size))
        samples.append(sample)
    images = [torch.randint(0, 256, (3, size, size), generator=gen, dtype=torch.uint8)
              for _ in range(batch)]
    return model.data_preprocessor(dict(inputs=images, data_samples=samples), True)


def first_step(variant, batch: int, size: int) -> tuple:
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/maskrcnn_glnet_4g_coco.py'))
    if variant == 'resnet':
        cfg.model.backbone = get_config('mmdet::_base_/models/mask-rcnn_r50_fpn.py').model.backbone
        cfg.model.backbone.init_cfg = None
        cfg.model.neck.in_channels = [256, 512, 1024, 2048]
    else:
        cfg.model.backbone.update(init_cfg=None, **variant)
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    loss, _ = model.parse_losses(model(**fake_batch(model, batch, size), mode='loss'))
    loss.backward()
    grads = [p.grad.norm() for p in model.parameters() if p.grad is not None]
    return loss.item(), torch.stack(grads).norm().item()


@tool_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=at_least(32), default=256)
    parser.add_argument('--batch', type=at_least(1), default=4)
    args = parser.parse_args(argv)
    for name, variant in VARIANTS.items():
        loss, grad = first_step(variant, args.batch, args.size)
        print(f'{name:45s} first loss {loss:7.2f}  gradient norm {grad:8.1f}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
