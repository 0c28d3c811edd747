"""Generate the classification set of the pretrain-then-fine-tune demo (docs/classification.md).

Twelve shape classes, the three of the detection demo (square, disc, triangle) among them, in an
ImageNet-style folder per class (``<out>/{train,val}/<class>/*.png``) for MMPretrain's
``CustomDataset``. Each image holds one large shape (the label) with a texture of its own (solid,
stripes, checks, blotches or a gradient) on a faintly textured background of a contrasting
colour, with clutter: small shapes of any class and thin lines crossing the image. (A first
version with busy backgrounds, weak contrast and larger clutter did not learn in the demo's
budget; docs/classification.md has the figures.) Nothing is downloaded; the same seed gives the
same files, and a run into the same folder replaces what an earlier one wrote there (it refuses
a folder holding files it did not write).

Example::

    python tools/make_pretrain_data.py --out data/pretrain
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from glmix_mm.utils.cli import generator_parser, tool_main
from glmix_mm.utils.generated_files import clear_previous_output, write_manifest

Polygon = List[Tuple[float, float]]
SPLITS = ('train', 'val')


def _regular(n: int, aspect: float = 1.) -> Polygon:
    theta = np.arange(n) * 2 * np.pi / n
    return list(zip(np.cos(theta), aspect * np.sin(theta)))


def _star() -> Polygon:
    theta = np.arange(10) * np.pi / 5
    radius = np.where(np.arange(10) % 2 == 0, 1., 0.45)
    return list(zip(radius * np.cos(theta), radius * np.sin(theta)))


def _cross() -> Polygon:
    a, b = 1., 0.33
    return [(b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b), (-b, -a), (b, -a),
            (b, -b), (a, -b), (a, b)]


def _arrow() -> Polygon:
    return [(-1., -0.25), (0.2, -0.25), (0.2, -0.65), (1., 0.), (0.2, 0.65), (0.2, 0.25),
            (-1., 0.25)]


def _offset(polygon: Polygon, dx: float) -> Polygon:
    return [(x + dx, y) for x, y in polygon]


# Each class: polygons in unit coordinates (circumradius 1), painted in order, each adding
# (True) or removing (False) its pixels.
SHAPES = {
    'square': [(_regular(4), True)],
    'disc': [(_regular(64), True)],
    'triangle': [(_regular(3), True)],
    'pentagon': [(_regular(5), True)],
    'hexagon': [(_regular(6), True)],
    'star': [(_star(), True)],
    'cross': [(_cross(), True)],
    'ring': [(_regular(64), True), ([(0.55 * x, 0.55 * y) for x, y in _regular(64)], False)],
    'ellipse': [(_regular(64, aspect=0.5), True)],
    'rhombus': [(_regular(4, aspect=0.45), True)],
    'crescent': [(_regular(64), True),
                 (_offset([(0.85 * x, 0.85 * y) for x, y in _regular(64)], 0.5), False)],
    'arrow': [(_arrow(), True)],
}
CLASSES = tuple(SHAPES)


def shape_mask(name: str, size: int, cx: float, cy: float, r: float,
               angle: float) -> Image.Image:
    """The ``L`` mask (0 / 255) of shape ``name`` at centre (cx, cy), circumradius r, rotated."""
    mask = Image.new('L', (size, size), 0)
    draw = ImageDraw.Draw(mask)
    c, s = np.cos(angle), np.sin(angle)
    for polygon, add in SHAPES[name]:
        points = [(cx + r * (c * x - s * y), cy + r * (s * x + c * y)) for x, y in polygon]
        draw.polygon(points, fill=255 if add else 0)
    return mask


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float64)


def texture(rng: np.random.Generator, size: int, base: np.ndarray,
            spread: float = 70.) -> np.ndarray:
    """A ``size`` x ``size`` x 3 float texture around colour ``base``: solid, stripes, checks,
    blotches or a gradient between ``base`` and a second colour about ``spread`` from it, with
    mild pixel noise."""
    other = np.clip(base + rng.normal(0, spread, 3), 0, 255)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    kind = rng.integers(5)
    if kind == 0:  # solid
        weight = np.zeros((size, size))
    elif kind == 1:  # stripes at a random angle and period
        angle, period = rng.uniform(0, np.pi), rng.uniform(3, 10)
        weight = (np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period) > 0)
    elif kind == 2:  # checks
        cell = rng.integers(3, 9)
        weight = ((xx // cell + yy // cell) % 2).astype(np.float64)
    elif kind == 3:  # blotches: coarse noise, upsampled
        coarse = rng.random((4, 4))
        weight = np.array(Image.fromarray((coarse * 255).astype(np.uint8)).resize(
            (size, size), Image.BICUBIC), np.float64) / 255
    else:  # linear gradient
        angle = rng.uniform(0, 2 * np.pi)
        ramp = xx * np.cos(angle) + yy * np.sin(angle)
        weight = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    weight = np.asarray(weight, np.float64)[..., None]
    pixels = base * (1 - weight) + other * weight + rng.normal(0, 6, (size, size, 3))
    return np.clip(pixels, 0, 255)


def _contrasting(rng: np.random.Generator, against: np.ndarray,
                 min_distance: float) -> np.ndarray:
    """A random colour at least ``min_distance`` (Euclidean, RGB) from ``against``, so that the
    label stands out; the farthest of a few tries when none is that far."""
    tries = [_colour(rng) for _ in range(20)]
    for colour in tries:
        if np.linalg.norm(colour - against) >= min_distance:
            return colour
    return max(tries, key=lambda colour: np.linalg.norm(colour - against))


def _paste(canvas: np.ndarray, pixels: np.ndarray, mask: Image.Image) -> None:
    alpha = np.asarray(mask, np.float64)[..., None] / 255
    canvas[:] = canvas * (1 - alpha) + pixels * alpha


def make_image(rng: np.random.Generator, size: int, label: str, max_clutter: int = 2,
               background_spread: float = 25., min_contrast: float = 150.) -> Image.Image:
    """One image of class ``label``: a textured background, up to ``max_clutter`` small shapes,
    the large labelled shape, then up to ``max_clutter`` thin lines over everything.

    The background's texture is faint (``background_spread``) and the labelled shape's colour
    is at least ``min_contrast`` from the background's, so that its outline, not the textures,
    carries the label.
    """
    background_colour = _colour(rng)
    canvas = texture(rng, size, background_colour, background_spread)
    for _ in range(rng.integers(0, max_clutter + 1)):
        r = rng.uniform(0.05, 0.10) * size
        cx, cy = rng.uniform(0, size, 2)
        name = CLASSES[rng.integers(len(CLASSES))]
        _paste(canvas, texture(rng, size, _colour(rng)),
               shape_mask(name, size, cx, cy, r, rng.uniform(0, 2 * np.pi)))
    r = rng.uniform(0.28, 0.45) * size
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    _paste(canvas, texture(rng, size, _contrasting(rng, background_colour, min_contrast), 40.),
           shape_mask(label, size, cx, cy, r, rng.uniform(0, 2 * np.pi)))
    img = Image.fromarray(canvas.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(0, max_clutter + 1)):
        x0, y0, x1, y1 = rng.uniform(0, size, 4)
        draw.line([(x0, y0), (x1, y1)], fill=tuple(int(c) for c in _colour(rng)), width=1)
    return img


def planned_files(num_per_class: Sequence[int]) -> List[str]:
    """Paths (relative to --out) of every file :func:`main` writes, for the per-class counts of
    the train and val splits."""
    return [f'{split}/{name}/{split}_{i:05d}.png' for split, num in zip(SPLITS, num_per_class)
            for name in CLASSES for i in range(num)]


def write_split(out: str, split: str, num_per_class: int, size: int, seed: int) -> int:
    """Write ``num_per_class`` images of every class into ``<out>/<split>/<class>/``."""
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        os.makedirs(osp.join(out, split, name), exist_ok=True)
    for i in range(num_per_class):
        for name in CLASSES:
            make_image(rng, size, name).save(osp.join(out, split, name, f'{split}_{i:05d}.png'))
    return num_per_class * len(CLASSES)


def parse_args(argv=None) -> argparse.Namespace:
    parser = generator_parser(__doc__.split('\n\n')[0], out='data/pretrain', num_train=500,
                              num_val=50, size=64, per=' per class')
    return parser.parse_args(argv)


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    planned = planned_files((args.num_train, args.num_val))
    clear_previous_output(args.out, planned, SPLITS, 'make_pretrain_data.py')
    for split, num, seed in zip(SPLITS, (args.num_train, args.num_val), (args.seed, args.seed + 1)):
        count = write_split(args.out, split, num, args.size, seed)
        print(f'{split}: {count} images of {len(CLASSES)} classes -> {args.out}/{split}')
    write_manifest(args.out, set(planned))
    return 0


if __name__ == '__main__':
    sys.exit(main())
