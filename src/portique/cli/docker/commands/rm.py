"""`portique rm [-f] [-v] CONTAINER...`"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--force", action="store_true", help="force the removal of a running container"
    )
    parser.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes too")
    parser.add_argument("-l", "--link", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.each import Missing, for_each
    from portique.engine import containers

    return for_each(
        args.containers,
        lambda ref: containers.remove(eng, ref, force=args.force, volumes=args.volumes),
        missing=Missing.SKIP if args.force else Missing.FAIL,  # `rm -f` of nothing is no error
    )
