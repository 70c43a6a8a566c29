"""The CLI's argparse (kept out of main.py: the thin client path imports no argparse)."""

from __future__ import annotations

import argparse
import sys


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line and exit 125, as Docker does."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"portique: {message}\nSee '{self.prog} --help'.\n")
        raise SystemExit(125)
