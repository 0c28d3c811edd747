"""Checkpoints: reading files safely, checking that they fit a model, converting formats.

* :mod:`~glmix_mm.checkpoint.unpickling`: unpickling ``torch.save`` files without running code;
* :mod:`~glmix_mm.checkpoint.io`: local, downloaded and safetensors files, one-line refusals of
  bad files;
* :mod:`~glmix_mm.checkpoint.fit`: finding the weights in a checkpoint and the one check that
  they fit a model (backbone ``init_cfg``, ``load_from``, ``--resume``, the tools);
* :mod:`~glmix_mm.checkpoint.loaders`: :func:`install_safe_loaders`, which ``import glmix_mm``
  calls so that MMEngine reads every checkpoint through the above.
"""
from .fit import (CheckpointMismatchError, FitReport, StateDict, check_file, check_fit,
                  check_state_dict, extract_state_dict, load_pretrained, loaded_state_dict,
                  strip_backbone_prefix)
from .io import load_local_checkpoint, load_safetensors, load_url_safely, save_checkpoint
from .loaders import install_safe_loaders
from .unpickling import (CheckpointLoadError, InertObject, UnsafeCheckpointError,
                         trust_checkpoint)

__all__ = [
    'CheckpointLoadError', 'CheckpointMismatchError', 'FitReport', 'InertObject', 'StateDict',
    'UnsafeCheckpointError', 'check_file', 'check_fit', 'check_state_dict', 'extract_state_dict',
    'install_safe_loaders', 'load_local_checkpoint', 'load_pretrained', 'load_safetensors',
    'load_url_safely', 'loaded_state_dict', 'save_checkpoint', 'strip_backbone_prefix',
    'trust_checkpoint'
]
