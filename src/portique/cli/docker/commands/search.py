"""`portique search TERM`: Docker Hub's search. portique talks to registries by
the distribution API alone, which has no search; it says so, in one line."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("term", metavar="TERM")
    parser.add_argument("-f", "--filter", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--format", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=25, help=argparse.SUPPRESS)
    parser.add_argument("--no-trunc", action="store_true", help=argparse.SUPPRESS)


def run(eng: Engine, args: argparse.Namespace) -> int:
    sys.stderr.write(
        f"portique: cannot search for {args.term!r}: no registry index is configured"
        " (portique pulls by name from registries, which offer no search)\n"
    )
    return 1
