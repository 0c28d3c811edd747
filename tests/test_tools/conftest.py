"""Shared fixtures of the tool tests: config options that point the demo detector at the tiny
generated demo dataset (``demo_data``, tests/conftest.py)."""
import pytest
from helpers import SMALL_DEMO_DETECTOR, cfg_options


@pytest.fixture(scope='session')
def demo_options(demo_data):
    """--cfg-options that point the demo detection config at ``demo_data``, small and fast
    (``SMALL_DEMO_DETECTOR``)."""
    root = f'{demo_data}/coco/'
    val = root + 'annotations/instances_val.json'
    return [
        f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}', f'val_evaluator.ann_file={val}',
        f'test_evaluator.ann_file={val}', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False', 'test_dataloader.persistent_workers=False',
        'randomness.seed=0', *cfg_options(SMALL_DEMO_DETECTOR)
    ]
