"""Argument types shared by the command-line tools."""
import argparse
from typing import Callable


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
