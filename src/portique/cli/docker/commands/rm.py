"""`portique rm [-f] [-v] CONTAINER...`"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--force", action="store_true", help="force the removal of a running container"
    )
    parser.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes too")
    parser.add_argument("-l", "--link", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(args: argparse.Namespace) -> int:
    from portique.engine import containers
    from portique.errors import NotFound, PortiqueError

    conn = containers.open_db()
    status = 0
    for ref in args.containers:
        try:
            containers.remove(conn, ref, force=args.force, volumes=args.volumes)
        except NotFound as exc:
            if args.force:
                continue  # Docker: rm -f of a missing container is not an error
            sys.stderr.write(f"portique: {exc}\n")
            status = 1
            continue
        except PortiqueError as exc:
            sys.stderr.write(f"portique: {exc}\n")
            status = 1
            continue
        print(ref)
    return status
