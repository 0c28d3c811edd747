"""glmix_mm.compat: the answers that differ between torch versions, checked on both branches
whichever torch runs the test."""
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
