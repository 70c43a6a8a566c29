"""`portique stop [-t SECONDS] [-s SIGNAL] CONTAINER...`"""

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
    parser.add_argument("-s", "--signal", default="", help="signal to send to the container")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(args: argparse.Namespace) -> int:
    from portique.engine import containers
    from portique.errors import PortiqueError

    sig = containers.signal_of(args.signal) if args.signal else None
    conn = containers.open_db()
    status = 0
    for ref in args.containers:
        try:
            containers.stop(conn, ref, args.time, sig)
        except PortiqueError as exc:
            sys.stderr.write(f"portique: {exc}\n")
            status = 1
            continue
        print(ref)
    return status
