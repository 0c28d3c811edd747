"""Making MMEngine read every checkpoint through glmix_mm's safe loader."""
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .io import load_local_checkpoint, load_url_safely


def install_safe_loaders() -> None:
    """Make MMEngine load checkpoints with :func:`~glmix_mm.checkpoint.io.load_local_checkpoint`.

    Registers it as MMEngine's loader for local paths (so it serves ``init_cfg=dict(
    type='Pretrained')``, ``load_from``, ``--resume`` and every library's ``load_checkpoint``) and
    replaces ``mmengine.runner.checkpoint.load_url``, through which all of MMEngine's remote
    schemes (``https://``, ``torchvision://``, ``open-mmlab://``, ``mmcls://``) load, by
    :func:`~glmix_mm.checkpoint.io.load_url_safely`. ``import glmix_mm`` calls it; calling it
    again changes nothing.
    """
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
    mmengine_checkpoint.load_url = load_url_safely
