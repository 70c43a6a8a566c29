"""`portique unpause CONTAINER...`"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.each import for_each
    from portique.engine import containers

    return for_each(args.containers, lambda ref: containers.unpause(eng, ref))
