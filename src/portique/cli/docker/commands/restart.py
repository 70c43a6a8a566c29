"""`portique restart [-t SECONDS] CONTAINER...`"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-t",
        "--time",
        "--timeout",
        dest="time",
        type=int,
        default=None,
        help="seconds to wait before killing",
    )
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(args: argparse.Namespace) -> int:
    from portique.engine import containers
    from portique.errors import PortiqueError

    conn = containers.open_db()
    status = 0
    for ref in args.containers:
        try:
            containers.restart(conn, ref, args.time)
        except PortiqueError as exc:
            sys.stderr.write(f"portique: {exc}\n")
            status = 1
            continue
        print(ref)
    return status
