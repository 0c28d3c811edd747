"""glmix_mm/utils/config_checks.py: --cfg-options below a value that is no dict."""
import argparse

import pytest

from glmix_mm.utils import ConfigError, ConfigOptionsAction, read_config


def options(*items: str) -> dict:
    """``--cfg-options ITEMS`` as the tools parse them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptionsAction)
    return parser.parse_args(['--cfg-options', *items]).cfg_options


def test_a_key_below_init_cfg_none_names_the_options_that_set_it(tmp_path):
    config = tmp_path / 'scratch.py'
    config.write_text("model = dict(backbone=dict(type='GLNet', init_cfg=None))\n")
    with pytest.raises(ConfigError) as error:
        read_config(str(config), options('model.backbone.init_cfg.checkpoint=x.pth'))
    problem, instead = str(error.value).split('; replace it whole with --cfg-options ')
    assert problem == ('--cfg-options model.backbone.init_cfg.checkpoint=x.pth: '
                       'model.backbone.init_cfg is None in the config, not a dict whose keys '
                       'can be set')
    cfg = read_config(str(config), options(*instead.split()))  # what it says to write works
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='x.pth')


def test_other_values_that_are_no_dict_are_named(tmp_path):
    config = tmp_path / 'c.py'
    config.write_text("model = dict(neck=dict(in_channels=[1, 2]), head=3)\n")
    with pytest.raises(ConfigError, match=r'model\.head is 3 in the config.*--cfg-options '
                       r'model\.head\._delete_=True model\.head\.num_classes=5$'):
        read_config(str(config), options('model.head.num_classes=5'))
    assert read_config(str(config), options('model.neck.in_channels=[3,4]', 'model.new.x=1'))


def test_a_dict_call_as_a_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        options("model.backbone.init_cfg=dict(type='Pretrained',checkpoint='x.pth')")
    assert exit_.value.code == 2
    assert 'set a dict entry by entry (KEY.NAME=VALUE)' in capsys.readouterr().err
