"""`portique export [-o FILE] CONTAINER`: the container's filesystem as a tar archive."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", default="", help="write to a file instead of STDOUT")
    parser.add_argument("container")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import containers, copy
    from portique.errors import InvalidArgument

    row = containers.get(eng, args.container)
    if not args.output and sys.stdout.isatty():
        raise InvalidArgument(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect"
        )
    with copy.container_root(eng, row) as root:
        if args.output:
            tmp = f"{args.output}.tmp"
            with open(tmp, "wb") as f:
                copy.export(root, f)
            import os

            os.replace(tmp, args.output)
        else:
            copy.export(root, sys.stdout.buffer)
            sys.stdout.flush()
    return 0
