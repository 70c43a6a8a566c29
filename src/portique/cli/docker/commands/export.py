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
            from pathlib import Path

            from portique.fileio import atomic_file

            with atomic_file(Path(args.output), 0o666, fsync=False) as f:  # mode as open()
                copy.export(root, f)
        else:
            copy.export(root, sys.stdout.buffer)
            sys.stdout.flush()
    from portique.engine import events

    events.container(eng, row, "export")
    return 0
