"""`checkpoint` and `restore`: refused (portique-runtime has no CRIU support)."""

from __future__ import annotations

import argparse

from portique.cli.runc.context import Context
from portique.errors import Unsupported


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Accept whatever a caller passes: the answer is the same.
    parser.add_argument("rest", nargs=argparse.REMAINDER)


def run(args: argparse.Namespace, ctx: Context) -> int:
    raise Unsupported(f"{args.verb} is not supported by portique-runtime (no CRIU support)")
