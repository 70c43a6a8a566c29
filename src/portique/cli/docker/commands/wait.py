"""`portique wait CONTAINER...`: print each exit code."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import containers
    from portique.errors import PortiqueError

    status = 0
    for ref in args.containers:
        try:
            print(containers.wait(eng, ref), flush=True)
        except PortiqueError as exc:
            sys.stderr.write(f"portique: {exc}\n")
            status = 1
    return status
