"""Argument types shared by the command-line tools."""
import argparse
from typing import Callable

from mmengine.config import DictAction


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an int not below ``minimum`` (a usage error names the value)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}') from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f'must be at least {minimum}, got {value}')
        return value

    return parse


class ConfigOptionsAction(DictAction):
    """MMEngine's ``DictAction`` for ``--cfg-options KEY=VALUE ...`` whose mistakes (no ``=``,
    an empty key, unbalanced brackets) end in argparse's one-line usage error."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        for item in values:
            key, equals, _ = item.partition('=')
            if not equals or not key.strip():
                parser.error(f'{option_string}: expected KEY=VALUE, got {item!r} (e.g. '
                             'train_cfg.max_epochs=1)')
        try:
            super().__call__(parser, namespace, values, option_string)
        except (AssertionError, ValueError) as error:
            parser.error(f'{option_string}: cannot read {" ".join(values)!r}: {error}')
