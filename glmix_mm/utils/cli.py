"""What the command-line tools share: how they answer an error, and their argument types.

A tool of ``tools/`` parses its arguments, calls the package and lets an error of ours
(:class:`~glmix_mm.errors.GLMixMMError`) reach :func:`tool_main`, its one handler: the user sees
``error: <message>`` and the error's exit code, never a traceback.
"""
import argparse
import functools
import os
import sys
from typing import Callable, Optional, Sequence

from mmengine.config import DictAction

from glmix_mm.errors import GLMixMMError, UsageError

Main = Callable[[Optional[Sequence[str]]], Optional[int]]


def tool_main(main: Optional[Main] = None, *, install_hint: Optional[str] = None):
    """Decorate a tool's ``main(argv=None) -> exit code``: an error of ours ends it with
    ``error: <message>`` on stderr and the error's ``exit_code``.

    Args:
        main (callable): The tool's ``main``; ``None`` when the decorator is called with
            options (``@tool_main(install_hint=...)``).
        install_hint (str, optional): For a tool with optional dependencies: an ``ImportError``
            is answered like a :class:`~glmix_mm.errors.UsageError`, followed by this hint
            (e.g. ``'install the deployment extra: pip install -e ".[deploy]"'``).
    """
    if main is None:
        return functools.partial(tool_main, install_hint=install_hint)

    @functools.wraps(main)
    def answering_errors(argv: Optional[Sequence[str]] = None) -> int:
        try:
            try:
                return main(argv)
            except ImportError as error:
                if install_hint is None:
                    raise
                raise UsageError(f'{error}; {install_hint}') from None
        except GLMixMMError as error:
            print(f'error: {error}', file=sys.stderr)
            return error.exit_code

    return answering_errors


def add_run_arguments(parser: argparse.ArgumentParser, dist_script: str) -> None:
    """The options ``tools/train.py`` and ``tools/test.py`` share: ``--cfg-options``,
    ``--launcher`` (``dist_script`` sets ``pytorch``) and ``--local-rank``."""
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptionsAction,
                        help='override config entries, e.g. train_cfg.max_epochs=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help=f'job launcher ({dist_script} sets pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_run_args(parser: argparse.ArgumentParser,
                   argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` with a parser of :func:`add_run_arguments`; ``LOCAL_RANK`` set from
    ``--local-rank`` unless the launcher set it."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


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


def generator_parser(description: str, out: str, num_train: int, num_val: int, size: int,
                     per: str = '') -> argparse.ArgumentParser:
    """The options the data generators (``tools/make_demo_data.py``,
    ``tools/make_pretrain_data.py``) share, with their defaults: ``--out`` (folder),
    ``--num-train`` and ``--num-val`` (images, ``per`` e.g. ``' per class'``), ``--size``
    (image side, at least 32 pixels) and ``--seed``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--out', default=out, help='output folder')
    parser.add_argument('--num-train', type=at_least(1), default=num_train,
                        help=f'training images{per}')
    parser.add_argument('--num-val', type=at_least(1), default=num_val,
                        help=f'validation images{per}')
    parser.add_argument('--size', type=at_least(32), default=size,
                        help='image side in pixels (at least 32)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    return parser


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
        except RecursionError:  # MMEngine's parser on a call such as init_cfg=dict(...)
            parser.error(f'{option_string}: cannot read {" ".join(values)!r}: a value is a '
                         'list [a,b] or tuple (a,b) of plain values; set a dict entry by entry '
                         '(KEY.NAME=VALUE)')
