"""The CLI's argparse (kept out of main.py: the thin client path imports no argparse)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, asking the terminal's width only when it formats text.

    argparse builds a formatter for every add_argument call (to check the
    metavar), and one without a width asks shutil.get_terminal_size():
    `run`'s ~90 flags paid for importing shutil (and with it bz2 and lzma) and
    90 terminal queries, help printed or not. The width matters only to the
    text, which always comes out of format_help().
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        self._ask_width = width is None
        # A width too wide to narrow anything until format_help knows the real one.
        super().__init__(
            prog, indent_increment, max_help_position, 1 << 20 if width is None else width
        )
        self._max_help = max_help_position

    def format_help(self) -> str:
        if self._ask_width:
            import shutil

            # As argparse computes them from the width it would have asked for.
            self._width = shutil.get_terminal_size().columns - 2
            self._max_help_position = min(
                self._max_help, max(self._width - 20, self._indent_increment * 2)
            )
            self._ask_width = False
        return super().format_help()


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line and exit 125, as Docker does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"portique: {message}\nSee '{self.prog} --help'.\n")
        raise SystemExit(125)
