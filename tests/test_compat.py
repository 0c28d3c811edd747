"""glmix_mm.compat: the answers that differ between torch (and transformers) versions, checked
on both branches whichever version runs the test."""
import subprocess
import sys

import pytest
import torch

from glmix_mm import compat


@pytest.mark.parametrize('narrow_copy', [True, False], ids=['narrow_copy', 'clone'])
def test_cropped_copy_is_a_fresh_contiguous_crop(monkeypatch, narrow_copy):
    monkeypatch.setattr(compat, '_narrow_copy_crops', narrow_copy)
    x = torch.randn(2, 9, 11, 4)
    crop = compat.cropped_copy(x, 7, 8)
    assert torch.equal(crop, x[:, :7, :8])
    assert crop.is_contiguous() and crop.data_ptr() != x.data_ptr()


def test_cropped_copy_has_gradients_where_it_clones(monkeypatch):
    """The branch of a torch older than TORCH_EXPORT_MIN, whose compiled training needs them
    (torch 2.1 has no derivative for narrow_copy)."""
    monkeypatch.setattr(compat, '_narrow_copy_crops', False)
    x = torch.randn(2, 9, 11, 4, requires_grad=True)
    compat.cropped_copy(x, 7, 8).sum().backward()
    expected = torch.zeros_like(x)
    expected[:, :7, :8] = 1
    assert torch.equal(x.grad, expected)


def test_torch_version_reads_release_numbers():
    assert compat.torch_version('2.1.2+cu121') == (2, 1)
    assert compat.torch_version('2.12.0a0+git1234') == (2, 12)
    assert compat.torch_version('2.9.0rc1') == (2, 9)


@pytest.mark.parametrize('transformers, multimodal', [('4.51.3', True), ('4.52.0', False),
                                                      ('4.57.6', False)])
def test_mmpretrain_multimodal_models_off_from_transformers_4_52(monkeypatch, transformers,
                                                                  multimodal):
    """What ``import glmix_mm`` does before MMPretrain's models are imported, for each
    transformers: beside 4.52 or newer, MMPretrain's switch for a missing transformers is off."""
    from mmpretrain.utils import dependency
    monkeypatch.delitem(sys.modules, 'mmpretrain.models')
    monkeypatch.setattr(compat, 'version', lambda name: transformers)
    monkeypatch.setattr(dependency, 'WITH_MULTIMODAL', True)
    compat.keep_mmpretrain_importable()
    assert dependency.WITH_MULTIMODAL is multimodal


def test_mmpretrain_imported_first_is_left_alone(monkeypatch):
    from mmpretrain.utils import dependency
    monkeypatch.setattr(compat, 'version', lambda name: '4.57.6')
    monkeypatch.setattr(dependency, 'WITH_MULTIMODAL', True)
    compat.keep_mmpretrain_importable()  # mmpretrain.models is imported in this process
    assert dependency.WITH_MULTIMODAL is True


def test_glmix_mm_and_mmpretrain_models_import_beside_the_installed_transformers():
    """In a fresh process, as a user's script: ``import glmix_mm`` first, then all of
    MMPretrain's models (whichever transformers, if any, this stack has)."""
    code = ('import glmix_mm, mmpretrain.models; from mmpretrain.models import Conformer; '
            'print("ok")')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == 'ok', result.stderr[-2000:]
