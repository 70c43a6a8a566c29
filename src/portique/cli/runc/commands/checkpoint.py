"""`checkpoint` and `restore`: refused (portique-runtime has no CRIU support)."""

from __future__ import annotations

import argparse

from portique.cli.runc.context import Context
from portique.errors import Unsupported

# Accept whatever flags a caller passes (CRIU has many): the answer is the same.
ACCEPTS_ANY = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container_id", metavar="container-id", nargs="?")


def run(args: argparse.Namespace, ctx: Context) -> int:
    raise Unsupported(f"{args.verb} is not supported by portique-runtime (no CRIU support)")
