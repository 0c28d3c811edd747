"""tools/make_pretrain_data.py: the classification set of the pretrain-then-fine-tune demo."""
import itertools
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from helpers import load_tool

gen = load_tool('make_pretrain_data.py')


def test_writes_a_folder_per_class_for_both_splits(tmp_path):
    out = str(tmp_path / 'pt')
    assert gen.main(['--out', out, '--num-train', '2', '--num-val', '1', '--size', '48']) == 0
    for split, count in (('train', 2), ('val', 1)):
        assert sorted(os.listdir(osp.join(out, split))) == sorted(gen.CLASSES)
        for name in gen.CLASSES:
            files = sorted(os.listdir(osp.join(out, split, name)))
            assert len(files) == count
            img = Image.open(osp.join(out, split, name, files[0]))
            assert img.size == (48, 48) and img.mode == 'RGB'
    assert len(gen.CLASSES) == 12 and {'square', 'disc', 'triangle'} <= set(gen.CLASSES)


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    args = ['--num-train', '1', '--num-val', '1', '--size', '40']
    for name, seed in (('a', '0'), ('b', '0'), ('c', '1')):
        assert gen.main(['--out', str(tmp_path / name), '--seed', seed, *args]) == 0
    path = 'train/star/train_00000.png'
    read = {n: np.asarray(Image.open(tmp_path / n / path)) for n in 'abc'}
    assert np.array_equal(read['a'], read['b'])
    assert not np.array_equal(read['a'], read['c'])


def test_the_classes_are_different_shapes():
    masks = {n: np.asarray(gen.shape_mask(n, 64, 32, 32, 24, 0.3)) > 0 for n in gen.CLASSES}
    assert all(m.sum() > 100 for m in masks.values())
    for a, b in itertools.combinations(gen.CLASSES, 2):
        assert (masks[a] != masks[b]).mean() > 0.03, (a, b)
    assert not masks['ring'][32, 32] and masks['disc'][32, 32]  # the hole is cut out


def test_rerun_replaces_and_foreign_files_are_refused(tmp_path, capsys):
    out = tmp_path / 'pt'
    assert gen.main(['--out', str(out), '--num-train', '2', '--num-val', '1', '--size', '32']) == 0
    assert gen.main(['--out', str(out), '--num-train', '1', '--num-val', '1', '--size', '32']) == 0
    assert not (out / 'train/disc/train_00001.png').exists()
    (out / 'train/disc/mine.png').write_bytes(b'x')
    assert gen.main(['--out', str(out), '--num-train', '1', '--num-val', '1']) == 2
    assert 'make_pretrain_data.py did not write' in capsys.readouterr().err
    assert (out / 'train/disc/train_00000.png').exists()  # nothing removed


@pytest.mark.parametrize('args', [['--size', '8'], ['--num-train', '0']])
def test_bad_arguments(tmp_path, args):
    with pytest.raises(SystemExit):
        gen.main(['--out', str(tmp_path / 'd'), *args])


def test_the_label_contrasts_with_the_background():
    rng = np.random.default_rng(0)
    for _ in range(50):
        background = rng.integers(0, 256, 3).astype(np.float64)
        colour = gen._contrasting(rng, background, 150.)
        assert np.linalg.norm(colour - background) >= 150.
    grey = np.full(3, 128.)  # nothing is 300 from mid-grey: the farthest try is returned
    assert np.linalg.norm(gen._contrasting(rng, grey, 300.) - grey) > 100.
