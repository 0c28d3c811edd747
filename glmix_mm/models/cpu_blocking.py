"""CPU cache blocking for GLNet inference: the same computation, with less memory traffic.

GLNet's pixel-wise conv chains (the MLPs and the GLMix local branch) and its stem work on the
largest maps of the network. In eager CPU inference this module runs them on chunks (groups of
whole images, or bands of rows with the rows of context their convolutions need) whose widest
intermediate map fits :data:`CHUNK_ELEMENTS`, so that those maps stay in cache and in memory the
allocator reuses, and adds each chunk's result straight into the residual or slot output
instead of concatenating chunks and adding once. The blocks' math is not restated here: the
blocked forwards compose the blocks' own sub-steps (:meth:`GLMixBlock.mixing_inputs`,
``global_mixing``, ``feature_conv``, ``scale_mixing``, ``norm2``, ``mlp``, ``scale_mlp``) with
the chunking helpers below. The results equal those of the plain model: the chunked functions
treat images independently and their output rows depend only on a known band of input rows.

:class:`~glmix_mm.models.GLNet` chooses this path with its ``execution`` argument; with the
default ``'auto'`` it asks :func:`applies`: eager CPU inference only. While autograd records,
chunks would keep their context rows and copies for backward; forward hooks must see each module
called once on whole maps; and whenever a graph is captured (``torch.compile`` / dynamo,
``torch.export``, both ONNX exporters, ``torch.jit.trace`` / ``script``, FX) the plain model is
what gets captured, so that the graph has no size-dependent Python decisions in it.
"""
from typing import Callable, List, NamedTuple, Tuple

import torch
import torch.nn as nn

from glmix_mm.compat import cpu_autocast_enabled, graph_capture
from .glmix import GLMixBlock, MHSABlock, ResidualBlock
from .layers import ResidualDWConv

Function = Callable[[torch.Tensor], torch.Tensor]

# Size, in tensor elements, of the widest intermediate map of a chunk (6 MiB in fp32): a chunk
# this large stays in the caches of the CPUs this was tuned on, while chunks stay few enough
# for the per-chunk overhead not to matter.
CHUNK_ELEMENTS = 3 * 2**19


def has_global_forward_hooks() -> bool:
    """Whether forward (pre-)hooks are registered for every module
    (:func:`torch.nn.modules.module.register_module_forward_hook` and ``..._pre_hook``).

    torch has no public query for these; its registries are read here, in this one function,
    and a torch without them counts as having none.
    """
    from torch.nn.modules import module as torch_module
    return any(
        getattr(torch_module, name, None)
        for name in ('_global_forward_hooks', '_global_forward_pre_hooks'))


def has_forward_hooks(model: nn.Module) -> bool:
    """Whether forward (pre-)hooks are registered on ``model``, any of its modules, or globally:
    they must see the modules called once on whole maps, as in the plain model."""
    if has_global_forward_hooks():
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def applies(x: torch.Tensor, model: nn.Module) -> bool:
    """Whether ``model`` may run ``x`` with cache blocking: eager CPU inference (eval mode, no
    autograd recording, no graph capture, no forward hooks) on a plain tensor."""
    if type(x) is not torch.Tensor or graph_capture():  # FX proxies, fake tensors, tracing
        return False
    recording = torch.is_grad_enabled() and x.requires_grad
    return (x.device.type == 'cpu' and not model.training and not recording
            and not has_forward_hooks(model))


def image_groups(num_images: int, max_images: int) -> List[slice]:
    """Consecutive groups of at most ``max_images`` (at least 1) images, of balanced sizes."""
    if num_images == 0:
        return [slice(None)]
    num_groups = -(-num_images // max(max_images, 1))
    size = -(-num_images // num_groups)
    return [slice(i, i + size) for i in range(0, num_images, size)]


def forward_by_images(fn: Function, x: torch.Tensor, max_images: int) -> torch.Tensor:
    """``fn(x)`` computed on groups of at most ``max_images`` whole images (the first dim of
    ``x``), of balanced sizes, and concatenated. ``fn`` must treat images independently."""
    groups = image_groups(x.shape[0], max_images)
    if len(groups) == 1:
        return fn(x)
    return torch.cat([fn(x[images]) for images in groups])


class Chunk(NamedTuple):
    """A chunk of an NCHW map (see :func:`plan_chunks`)."""
    images: slice  #: the images it covers
    rows: slice  #: the input rows it reads, context rows included
    kept: slice  #: the rows of its output that are kept (relative to ``rows``)
    out_rows: slice  #: where those rows belong in the whole output

    @property
    def is_band(self) -> bool:
        """A band of rows of one image (not a group of whole images)."""
        return self.out_rows != slice(None)


def plan_chunks(x: torch.Tensor, halo: int, max_pixels: int) -> List[Chunk]:
    """Chunks of at most about ``max_pixels`` pixels of the NCHW map ``x``, for a computation
    whose output row ``r`` depends only on input rows ``r - halo .. r + halo`` (zero padding at
    the borders) and that treats images independently.

    Chunks are groups of whole images, or bands of rows of one image extended by ``halo`` rows of
    context on each side (whose outputs are dropped). Empty (compute in one call) when ``x``
    fits.
    """
    B, _, H, W = x.shape
    if B * H * W <= max_pixels:
        return []
    whole = slice(None)
    if H * W <= max_pixels:
        return [Chunk(images, whole, whole, whole)
                for images in image_groups(B, max_pixels // (H * W))]
    rows = -(-H // -(-H * W // max_pixels))  # bands of equal height
    chunks = []
    for b in range(B):
        for start in range(0, H, rows):
            stop = min(start + rows, H)
            lo, hi = max(start - halo, 0), min(stop + halo, H)
            chunks.append(
                Chunk(slice(b, b + 1), slice(lo, hi), slice(start - lo, stop - lo),
                      slice(start, stop)))
    return chunks


def run_chunk(fn: Function, x: torch.Tensor, chunk: Chunk) -> torch.Tensor:
    """The kept rows of ``fn`` applied to one chunk of ``x``."""
    return fn(x[chunk.images, :, chunk.rows])[:, :, chunk.kept]


def forward_in_chunks(fn: Function, x: torch.Tensor, halo: int, max_pixels: int) -> torch.Tensor:
    """``fn(x)`` for an NCHW map, computed on the chunks of :func:`plan_chunks` and
    concatenated: the same result, with less memory traffic.

    ``fn`` must treat images independently (no batch statistics) and let output row ``r``
    depend only on input rows ``r - halo .. r + halo``, with zero padding at the borders (a chain
    of pixel-wise layers and padded convolutions).
    """
    chunks = plan_chunks(x, halo, max_pixels)
    if not chunks:
        return fn(x)
    pieces = [run_chunk(fn, x, chunk) for chunk in chunks]
    if not chunks[0].is_band:
        return torch.cat(pieces)
    bands = len(chunks) // x.shape[0]
    return torch.cat([torch.cat(pieces[i:i + bands], dim=2) for i in range(0, len(pieces), bands)])


def add_into(branch: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x + branch``, written into ``branch`` where that gives the same result (same shape,
    and a sum of ``branch``'s dtype: not a bf16 branch under autocast added to an fp32 ``x``).

    ``branch`` must be a fresh tensor nothing else reads. Adding in place saves allocating and
    first-touching one more full feature map, which on CPU costs as much as the addition.
    """
    if branch.shape == x.shape and branch.dtype == torch.result_type(branch, x):
        return branch.add_(x)
    return x + branch


def add_in_chunks(fn: Function, x: torch.Tensor, out: torch.Tensor, halo: int,
                  max_pixels: int) -> torch.Tensor:
    """``out + fn(x)`` (``fn`` as for :func:`forward_in_chunks`), where chunked added into
    ``out`` chunk by chunk, which saves concatenating the chunks and a separate addition.

    ``out`` is overwritten: it must be a tensor nothing else reads later, such as a fresh block
    output, or ``x`` itself (a residual; then ``x`` is not split into bands of rows, whose
    context rows would read sums). Under CPU autocast (where ``fn`` may return another dtype
    than ``out``), one addition as :func:`add_into` does.
    """
    chunks = plan_chunks(x, halo, max_pixels)
    bands_of_x = out is x and chunks and chunks[0].is_band
    if not chunks or bands_of_x or cpu_autocast_enabled():
        branch = forward_in_chunks(fn, x, halo, max_pixels)
        return out + x if branch is x else add_into(branch, out)
    for chunk in chunks:
        out[chunk.images, :, chunk.out_rows].add_(run_chunk(fn, x, chunk))
    return out


def chain_geometry(chain: nn.Module) -> Tuple[int, int]:
    """``(halo, width)`` of a chain of pixel-wise layers and stride-1 padded convolutions: the
    rows of context it needs on each side, and the channels of its widest map."""
    halo, width = 0, 1
    for layer in chain.modules():
        if isinstance(layer, nn.Conv2d):
            halo += layer.dilation[0] * (layer.kernel_size[0] // 2)
            width = max(width, layer.in_channels, layer.out_channels)
    return halo, width


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def add_chain(chain: nn.Module, x: torch.Tensor, out: torch.Tensor, pre: Function = _identity,
              post: Function = _identity) -> torch.Tensor:
    """``out + post(chain(pre(x)))`` in chunks of :data:`CHUNK_ELEMENTS` elements of the chain's
    widest map (``pre`` and ``post``: per-pixel maps such as a norm and a layer scale; ``out``
    as for :func:`add_in_chunks`)."""
    halo, width = chain_geometry(chain)
    return add_in_chunks(lambda t: post(chain(pre(t))), x, out, halo,
                         max(CHUNK_ELEMENTS // width, 1))


def mlp_residual(block: ResidualBlock, x: torch.Tensor) -> torch.Tensor:
    """``x + scale_mlp(mlp(norm2(x)))``, the MLP half of an NCHW block, added into ``x`` (the
    block's fresh residual sum)."""
    return add_chain(block.mlp, x, x, pre=block.norm2, post=block.scale_mlp)


def glmix_block(block: GLMixBlock, x: torch.Tensor) -> torch.Tensor:
    """:meth:`GLMixBlock.forward`, with the local branch added chunk by chunk into the fresh slot
    output, and the MLP into the residual."""
    x, y, init_slots = block.mixing_inputs(x)
    mixed = add_chain(block.feature_conv, y, block.global_mixing(y, init_slots))
    return mlp_residual(block, add_into(block.scale_mixing(mixed), x))


def mhsa_block(block: MHSABlock, x: torch.Tensor) -> torch.Tensor:
    """:meth:`MHSABlock.forward`, with the MLP added chunk by chunk into the residual."""
    return mlp_residual(block, block.attention_residual(x))


BLOCKED_FORWARDS = {GLMixBlock: glmix_block, MHSABlock: mhsa_block}


def block_forward(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``block(x)``, cache-blocked where this module knows how (GLMix and NCHW MHSA blocks)."""
    blocked = BLOCKED_FORWARDS.get(type(block))
    return block(x) if blocked is None else blocked(block, x)


def stem_elements_per_pixel(stem: nn.Module) -> float:
    """Elements of the stem's widest map per input pixel (convolutions' channels over their
    cumulative stride squared)."""
    stride, widest = 1, 0.
    for layer in stem.modules():
        if isinstance(layer, nn.Conv2d) and not isinstance(layer, ResidualDWConv):
            stride *= layer.stride[0]
            widest = max(widest, layer.out_channels / stride**2)
    return widest


def stem_forward(stem: Function, x: torch.Tensor, elements_per_pixel: float) -> torch.Tensor:
    """The stem on groups of images whose widest map fits :data:`CHUNK_ELEMENTS`: its maps are
    the largest of the network and its norms are per image in eval mode."""
    image_elements = x.shape[2] * x.shape[3] * elements_per_pixel
    return forward_by_images(stem, x, int(CHUNK_ELEMENTS // max(image_elements, 1)))
