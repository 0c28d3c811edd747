"""See what GLNet sees: the soft clustering of pixels into semantic slots.

For each chosen GLMix block, draws the input image, the slot assignment map (every pixel coloured
by its most likely slot) and a few representative slots (k-medoids over the slots' assignment
maps) as heat maps over the image, into one PNG.

Examples::

    python tools/visualize_slots.py demo.jpg --arch 4g --checkpoint checkpoints/glnet_4g.pth \
        --out slots.png
    python tools/visualize_slots.py demo.jpg --config configs/maskrcnn_glnet_4g_coco.py \
        --checkpoint work_dirs/maskrcnn_glnet_4g_coco/epoch_12.pth --blocks 1.3 2.16 --out s.png
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import mmcv  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from glmix_mm.errors import GLMixMMError, UsageError  # noqa: E402
from glmix_mm.models import GLMixBlock, GLNet  # noqa: E402
from glmix_mm.utils import ConfigError, read_config, tool_main  # noqa: E402
from glmix_mm.utils.cli import at_least  # noqa: E402

IMAGENET_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
IMAGENET_STD = np.array([58.395, 57.12, 57.375], np.float32)


def build_backbone(arch: Optional[str], config: Optional[str], checkpoint: Optional[str],
                   allow_partial: bool = False) -> GLNet:
    """GLNet from an arch name or from a config's backbone, with the checkpoint's weights
    (see :meth:`GLNet.init_weights`).

    Raises:
        UsageError: ``arch`` is no GLNet arch.
        ConfigError: The config's backbone is no GLNet, or GLNet refuses its arguments.
    """
    if config:
        cfg = read_config(config).model
        kwargs = dict(cfg.get('backbone', cfg))
        if kwargs.pop('type', 'GLNet').split('.')[-1] != 'GLNet':
            raise ConfigError(f'{config} has no GLNet backbone: slots exist only in GLNet.')
        kwargs.pop('init_cfg', None)
        kwargs.pop('pretrained', None)
        try:
            model = GLNet(**kwargs)
        except (ValueError, TypeError) as error:
            raise ConfigError(f'{config}: model.backbone: {error}') from None
    else:
        try:
            model = GLNet(arch or '4g')
        except ValueError as error:
            raise UsageError(f'--arch: {error}') from None
    if checkpoint:  # refused unless it fits, or (allow_partial) what fits, with a warning
        model.init_cfg = dict(type='Pretrained', checkpoint=checkpoint,
                              allow_partial=allow_partial)
        model.init_weights()
    return model.eval()


def glmix_blocks(model: GLNet) -> Dict[str, GLMixBlock]:
    """``'stage.block'`` -> GLMix block, for every block that has slots."""
    return {
        f'{i}.{j}': block
        for i, stage in enumerate(model.stages) for j, block in enumerate(stage.blocks)
        if isinstance(block, GLMixBlock)
    }


def check_block_names(model: GLNet, names: Sequence[str]) -> None:
    """Refuse ``--blocks`` entries that are not ``stage.block``, name no block of ``model``, or
    name a block without slots (an MHSA block), saying which blocks have slots."""
    with_slots = ', '.join(glmix_blocks(model))
    for name in names:
        stage, _, block = name.partition('.')
        if not (stage.isdigit() and block.isdigit()):
            raise UsageError(f"--blocks {name!r}: give blocks as 'stage.block' (e.g. 2.5); "
                             f'blocks with slots: {with_slots}')
        stage, block = int(stage), int(block)
        if stage >= len(model.stages) or block >= len(model.stages[stage].blocks):
            sizes = ', '.join(f'stage {i}: 0..{len(s.blocks) - 1}'
                              for i, s in enumerate(model.stages))
            raise UsageError(f'--blocks {name!r}: no such block ({sizes})')
    unknown = [n for n in names if n not in glmix_blocks(model)]
    if unknown:
        raise UsageError(f'blocks {unknown} have no slots (not GLMix blocks); blocks with '
                         f'slots: {with_slots}')


def default_blocks(blocks: Dict[str, GLMixBlock]) -> List[str]:
    """The last GLMix block of every stage that has one."""
    last = {}
    for name in blocks:
        last[name.split('.')[0]] = name
    return list(last.values())


def read_rgb(path: str) -> np.ndarray:
    """An image file as 8-bit RGB, read as MMDetection's pipeline reads it (mmcv): grayscale
    and palette images become RGB, 16-bit images are scaled to 8 bits (not clipped), alpha is
    dropped."""
    if not osp.isfile(path):
        raise UsageError(f'image {path!r} does not exist')
    try:
        rgb = mmcv.imread(path, channel_order='rgb')
    except Exception:  # OpenCV raises cv2.error on an empty or undecodable file
        rgb = None
    if rgb is None:
        raise GLMixMMError(f'{path!r} ({osp.getsize(path)} bytes) is not an image file that can '
                         'be read (PNG, JPEG, BMP, TIFF, ...)')
    return rgb


def load_image(path: str, size: int) -> Tuple[np.ndarray, torch.Tensor]:
    """The image resized to ``size`` on its short side (RGB uint8) and its normalised tensor."""
    img = Image.fromarray(read_rgb(path))
    scale = size / min(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                     Image.BICUBIC)
    rgb = np.asarray(img)
    tensor = torch.from_numpy((rgb - IMAGENET_MEAN) / IMAGENET_STD).permute(2, 0, 1)[None]
    return rgb, tensor.float()


@torch.no_grad()
def slot_assignments(model: GLNet, blocks: Dict[str, GLMixBlock], names: Sequence[str],
                     image: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per block, the dispatch probabilities ``(num_slots, H, W)`` of every pixel over slots."""
    inputs = {}
    hooks = [
        blocks[n].register_forward_pre_hook(lambda m, args, n=n: inputs.__setitem__(n, args[0]))
        for n in names
    ]
    model(image)
    for hook in hooks:
        hook.remove()
    result = {}
    for name in names:
        x = inputs[name]
        logits = blocks[name].slot_logits(x)[0]  # (S, H*W)
        result[name] = logits.softmax(0).unflatten(1, x.shape[2:])
    return result


def k_medoids(vectors: torch.Tensor, k: int, iters: int = 20) -> List[int]:
    """Indices of ``k`` distinct medoids of ``vectors`` (rows) under cosine distance.

    Identical rows (slots whose maps have collapsed into one) still give distinct indices.
    """
    k = min(k, len(vectors))
    unit = F.normalize(vectors.flatten(1), dim=1)
    dist = 1 - unit @ unit.T
    medoids = [int(dist.sum(1).argmin())]
    while len(medoids) < k:  # farthest-point start
        nearest = dist[:, medoids].min(1).values
        nearest[medoids] = -float('inf')
        medoids.append(int(nearest.argmax()))
    for _ in range(iters):
        members = dist[:, medoids].argmin(1)
        members[medoids] = torch.arange(k)  # each medoid stays in its own cluster
        updated = [int(idx[dist[idx][:, idx].sum(1).argmin()])
                   for idx in ((members == c).nonzero().flatten() for c in range(k))]
        if updated == medoids:
            break
        medoids = updated
    return medoids


PANEL_PX, DPI = 240, 100


def draw(rgb: np.ndarray, assignments: Dict[str, torch.Tensor], num_shown: int,
         out: str) -> None:
    """One row per block: image, slot assignment map, ``num_shown`` representative slots."""
    rows, cols = len(assignments), 2 + num_shown
    # 240-pixel panels at 100 dpi; inches from whole pixels, since 2.4 * 3 is 7.1999...: older
    # matplotlib truncates that to 719 pixels.
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_PX * cols / DPI, PANEL_PX * rows / DPI),
                             squeeze=False)
    h, w = rgb.shape[:2]
    for row, (name, probs) in zip(axes, assignments.items()):
        up = F.interpolate(probs[None], size=(h, w), mode='bilinear', align_corners=False)[0]
        labels = up.argmax(0).numpy()
        row[0].imshow(rgb)
        row[0].set_title(f'block {name}', fontsize=8)
        row[1].imshow(labels, cmap='tab20', interpolation='nearest')
        row[1].set_title(f'{len(probs)} slots: argmax', fontsize=8)
        for ax, slot in zip(row[2:], k_medoids(up, num_shown)):
            ax.imshow(rgb)
            ax.imshow(up[slot].numpy(), cmap='jet', alpha=0.55)
            ax.set_title(f'slot {slot}', fontsize=8)
        for ax in row:
            ax.axis('off')
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Draw GLNet semantic-slot maps of an image.')
    parser.add_argument('image', help='input image')
    parser.add_argument('--arch', help='GLNet arch (default 4g; ignored with --config)')
    parser.add_argument('--config', help='detection/segmentation/classification config whose '
                        'backbone is GLNet')
    parser.add_argument('--checkpoint', help='released, converted or trained checkpoint')
    parser.add_argument('--allow-partial', action='store_true',
                        help='draw even with a checkpoint that does not fit the backbone: load '
                        'the keys that fit and warn (refused by default)')
    parser.add_argument('--blocks', nargs='+', help="GLMix blocks as 'stage.block' "
                        '(default: the last GLMix block of each stage)')
    parser.add_argument('--size', type=at_least(32), default=448,
                        help='short side of the input (at least 32: one pixel at stride 32)')
    parser.add_argument('--num-slots-shown', type=at_least(1), default=4,
                        help='representative slots drawn per block')
    parser.add_argument('--out', default='slots.png', help='output PNG')
    return parser.parse_args(argv)


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.config and not osp.isfile(args.config):
        raise UsageError(f'config {args.config!r} does not exist')
    rgb, image = load_image(args.image, args.size)
    model = build_backbone(args.arch, args.config, args.checkpoint, args.allow_partial)
    blocks = glmix_blocks(model)
    names = args.blocks or default_blocks(blocks)
    check_block_names(model, names)
    draw(rgb, slot_assignments(model, blocks, names, image), args.num_slots_shown, args.out)
    print(f'saved {args.out} ({len(names)} blocks: {", ".join(names)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
