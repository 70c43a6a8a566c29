"""`portique export [-o FILE] CONTAINER`: the container's filesystem as a tar archive."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", default="", help="write to a file instead of STDOUT")
    parser.add_argument("container")


def run(args: argparse.Namespace) -> int:
    from portique.engine import containers, copy
    from portique.errors import InvalidArgument

    row = containers.get(containers.open_db(), args.container)
    if not args.output and sys.stdout.isatty():
        raise InvalidArgument(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect"
        )
    with copy.container_root(row) as root:
        if args.output:
            from pathlib import Path

            from portique.fileio import atomic_file

            with atomic_file(Path(args.output), 0o666, fsync=False) as f:  # mode as open()
                copy.export(root, f)
        else:
            copy.export(root, sys.stdout.buffer)
            sys.stdout.flush()
    return 0
