"""Generate the small, deterministic demo datasets used by the demo configs and the tests.

Images of coloured squares, discs and triangles on textured backgrounds, with exact labels:

* ``<out>/coco``: COCO instance format (``train/``, ``val/``, ``annotations/instances_*.json``);
  every instance mask is the exact set of pixels painted for the object (RLE), its box the exact
  extent of that mask. Objects never overlap, so the masks are also the visible pixels.
* ``<out>/ade``: ADE20K format for MMSegmentation (``images/{training,validation}/*.jpg``,
  ``annotations/{training,validation}/*.png``); label 0 is background, 1..3 the shapes.
* ``<out>/imagenet``: an ImageNet-style folder per class (``{train,val}/<class>/*.png``), one
  shape per image, for MMPretrain's ``CustomDataset``.

Nothing is downloaded; the same seed gives the same files. Run again into the same folder, it
replaces what it wrote there before (listed in ``<out>/.make_demo_data.json``), so no image of
an earlier run stays in a dataset; it refuses, before touching anything, a folder whose
``coco/``, ``ade/`` or ``imagenet/`` holds files it did not write.

Example::

    python tools/make_demo_data.py --out data/demo
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from glmix_mm.utils.cli import at_least, generator_parser, tool_main
from glmix_mm.utils.generated_files import DEMO_SUBTREES, clear_previous_output, write_manifest
from glmix_mm.utils.generated_files import files_in_subtrees  # noqa: F401 (for its users)

CLASSES = ('square', 'disc', 'triangle')
# The folders below --out that the generator writes into, and the list of files it wrote.
SUBTREES = DEMO_SUBTREES
# Colours the demo visualisations use for the classes (RGB).
PALETTE = [(220, 20, 60), (0, 128, 255), (255, 200, 0)]


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A smooth colour gradient with mild noise."""
    start, end = rng.integers(0, 160, 3), rng.integers(0, 160, 3)
    ramp = np.linspace(0, 1, size)[:, None, None]
    horizontal = rng.random() < 0.5
    grad = start + (end - start) * (ramp if horizontal else ramp.transpose(1, 0, 2))
    img = np.broadcast_to(grad, (size, size, 3)) + rng.normal(0, 8, (size, size, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _shape_polygon(kind: int, cx: float, cy: float, r: float,
                   angle: float) -> List[Tuple[float, float]]:
    """Vertices of a square, a disc (64-gon) or a triangle of circumradius ``r``."""
    n = (4, 64, 3)[kind]
    theta = angle + np.arange(n) * 2 * np.pi / n
    return list(zip(cx + r * np.cos(theta), cy + r * np.sin(theta)))


def _sample_objects(rng: np.random.Generator, size: int,
                    max_objects: int) -> List[Tuple[int, float, float, float, float]]:
    """Non-overlapping objects ``(class, cx, cy, radius, angle)`` (bounding discs disjoint)."""
    objects = []
    for _ in range(50):
        if len(objects) == max_objects:
            break
        r = rng.uniform(0.1, 0.25) * size
        cx, cy = rng.uniform(r, size - r, 2)
        if all(np.hypot(cx - o[1], cy - o[2]) > r + o[3] + 2 for o in objects):
            objects.append((int(rng.integers(len(CLASSES))), cx, cy, r,
                            rng.uniform(0, 2 * np.pi)))
    return objects


def make_image(rng: np.random.Generator, size: int,
               max_objects: int) -> Tuple[Image.Image, np.ndarray, List[dict]]:
    """One image, its semantic label map (0 = background) and its instances."""
    img = _background(rng, size)
    semantic = np.zeros((size, size), np.uint8)
    draw = ImageDraw.Draw(img)
    instances = []
    for kind, cx, cy, r, angle in _sample_objects(rng, size, max_objects):
        mask_img = Image.new('L', (size, size), 0)
        ImageDraw.Draw(mask_img).polygon(_shape_polygon(kind, cx, cy, r, angle), fill=1)
        mask = np.array(mask_img, dtype=np.uint8)
        if mask.sum() < 16:
            continue
        colour = tuple(int(c) for c in np.clip(
            np.array(PALETTE[kind]) + rng.integers(-40, 41, 3), 0, 255))
        draw.bitmap((0, 0), mask_img.point(lambda v: 255 * v), fill=colour)
        semantic[mask > 0] = kind + 1
        instances.append(dict(category=kind, mask=mask))
    return img, semantic, instances


def _coco_annotation(inst: dict, ann_id: int, image_id: int) -> dict:
    rle = mask_utils.encode(np.asfortranarray(inst['mask']))
    ys, xs = np.nonzero(inst['mask'])
    x0, y0 = int(xs.min()), int(ys.min())
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=inst['category'] + 1,
        bbox=[x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0],
        area=int(inst['mask'].sum()),
        segmentation=dict(size=rle['size'], counts=rle['counts'].decode()),
        iscrowd=0)


def write_split(out: str, split: str, num_images: int, size: int, max_objects: int,
                seed: int) -> Dict[str, int]:
    """Write one split of both the COCO and the ADE20K-format dataset."""
    rng = np.random.default_rng(seed)
    ade_split = dict(train='training', val='validation')[split]
    dirs = [osp.join(out, 'coco', split), osp.join(out, 'coco', 'annotations'),
            osp.join(out, 'ade', 'images', ade_split),
            osp.join(out, 'ade', 'annotations', ade_split)]
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        img, semantic, instances = make_image(rng, size, max_objects)
        name = f'{split}_{image_id:05d}'
        img.save(osp.join(dirs[0], name + '.png'))
        img.save(osp.join(dirs[2], name + '.jpg'), quality=95)
        Image.fromarray(semantic).save(osp.join(dirs[3], name + '.png'))
        images.append(dict(id=image_id, file_name=name + '.png', height=size, width=size))
        for inst in instances:
            annotations.append(_coco_annotation(inst, len(annotations) + 1, image_id))
    categories = [dict(id=i + 1, name=n, supercategory='shape') for i, n in enumerate(CLASSES)]
    with open(osp.join(dirs[1], f'instances_{split}.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return dict(images=len(images), instances=len(annotations))


def write_classification_split(out: str, split: str, num_per_class: int, size: int,
                               seed: int) -> int:
    """One centred shape per image, in a folder per class."""
    rng = np.random.default_rng(seed)
    for kind, name in enumerate(CLASSES):
        folder = osp.join(out, 'imagenet', split, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(num_per_class):
            img = _background(rng, size)
            r = rng.uniform(0.25, 0.4) * size
            cx, cy = rng.uniform(0.4, 0.6, 2) * size
            colour = tuple(int(c) for c in rng.integers(40, 256, 3))
            ImageDraw.Draw(img).polygon(
                _shape_polygon(kind, cx, cy, r, rng.uniform(0, 2 * np.pi)), fill=colour)
            img.save(osp.join(folder, f'{split}_{i:05d}.png'))
    return num_per_class * len(CLASSES)


def planned_files(num_train: int, num_val: int) -> List[str]:
    """Paths (relative to --out) of every file :func:`main` writes for these split sizes."""
    files = []
    for split, num in (('train', num_train), ('val', num_val)):
        ade_split = dict(train='training', val='validation')[split]
        files.append(f'coco/annotations/instances_{split}.json')
        for image_id in range(1, num + 1):
            name = f'{split}_{image_id:05d}'
            files += [f'coco/{split}/{name}.png', f'ade/images/{ade_split}/{name}.jpg',
                      f'ade/annotations/{ade_split}/{name}.png']
        files += [f'imagenet/{split}/{c}/{split}_{i:05d}.png' for c in CLASSES
                  for i in range(max(1, num // len(CLASSES)))]
    return files


def parse_args(argv=None) -> argparse.Namespace:
    parser = generator_parser('Generate the glmix_mm demo datasets.', out='data/demo',
                              num_train=400, num_val=50, size=128)
    parser.add_argument('--max-objects', type=at_least(1), default=4,
                        help='objects per image (max)')
    return parser.parse_args(argv)


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    planned = planned_files(args.num_train, args.num_val)
    clear_previous_output(args.out, planned, SUBTREES, 'make_demo_data.py')
    for split, num, seed in (('train', args.num_train, args.seed),
                             ('val', args.num_val, args.seed + 1)):
        stats = write_split(args.out, split, num, args.size, args.max_objects, seed)
        print(f'{split}: {stats["images"]} images, {stats["instances"]} instances -> '
              f'{args.out}/coco, {args.out}/ade')
        per_class = max(1, num // len(CLASSES))
        count = write_classification_split(args.out, split, per_class, args.size, seed + 10)
        print(f'{split}: {count} single-shape images -> {args.out}/imagenet')
    write_manifest(args.out, set(planned))
    return 0


if __name__ == '__main__':
    sys.exit(main())
