"""Checkpoints: reading files safely, checking that they fit a model.

* :mod:`~glmix_mm.checkpoint.unpickling`: unpickling ``torch.save`` files without running code;
* :mod:`~glmix_mm.checkpoint.io`: local, downloaded and safetensors files, one-line refusals of
  bad files, and :func:`convert_file` (read, convert, write: the converter tools);
* :mod:`~glmix_mm.checkpoint.fit`: finding the weights in a checkpoint and the one check that
  they fit a model (backbone ``init_cfg``, ``load_from``, ``--resume``, the tools);
* :mod:`~glmix_mm.checkpoint.loaders`: :func:`install_safe_loaders`, which ``import glmix_mm``
  calls so that MMEngine reads every checkpoint through the above.

The key layouts of each model family (release <-> OpenMMLab) live beside the models
(:mod:`glmix_mm.models.converters`); this package knows no model.
"""
from .fit import (CheckpointMismatchError, FitReport, StateDict, check_file, check_fit,
                  check_state_dict, extract_state_dict, load_pretrained, loaded_state_dict,
                  strip_backbone_prefix)
from .io import (convert_file, load_local_checkpoint, load_safetensors, load_url_safely,
                 save_checkpoint)
from .loaders import install_safe_loaders
from .unpickling import (CheckpointLoadError, CheckpointNotFoundError, InertObject,
                         UnsafeCheckpointError, trust_checkpoint)

__all__ = [
    'CheckpointLoadError', 'CheckpointMismatchError', 'CheckpointNotFoundError', 'FitReport',
    'InertObject', 'StateDict', 'UnsafeCheckpointError', 'check_file', 'check_fit',
    'check_state_dict', 'convert_file', 'extract_state_dict', 'install_safe_loaders',
    'load_local_checkpoint', 'load_pretrained', 'load_safetensors', 'load_url_safely',
    'loaded_state_dict', 'save_checkpoint', 'strip_backbone_prefix', 'trust_checkpoint'
]
