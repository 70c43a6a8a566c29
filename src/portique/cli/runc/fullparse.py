"""The verbs' command lines through argparse: --help, errors, and anything
the fast parser (fastargs.py) leaves alone, in argparse's words."""

from __future__ import annotations

import argparse
import os
import sys

from portique.cli.runc.fastargs import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter with a width that costs no import.

    argparse builds a formatter for every add_argument call, and without a
    width it imports shutil (and with it bz2 and lzma) for
    shutil.get_terminal_size(): ~2 ms of every call, help printed or not.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_terminal_width() - 2)


def _terminal_width() -> int:
    # What shutil.get_terminal_size() answers: $COLUMNS, stdout's window, 80.
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting with 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def parser_for(verb: str, module: ModuleType) -> ArgumentParser:
    parser = ArgumentParser(
        prog=f"portique-runtime {verb}", add_help=True, formatter_class=HelpFormatter
    )
    module.add_arguments(parser)
    return parser


def parse_full(verb: str, module: ModuleType, args: list[str]) -> argparse.Namespace | int:
    """The namespace, or the exit status of --help (printed); UsageError on a mistake."""
    parser = parser_for(verb, module)
    try:
        if getattr(module, "ACCEPTS_ANY", False):
            ns, _ = parser.parse_known_args(args)
        else:
            ns = parser.parse_args(args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    return ns


__all__ = ["ArgumentParser", "HelpFormatter", "parse_full", "parser_for"]
