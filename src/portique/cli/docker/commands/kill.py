"""`portique kill [-s SIGNAL] CONTAINER...`"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--signal", default="KILL", help="signal to send to the container")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(args: argparse.Namespace) -> int:
    from portique.engine import containers
    from portique.errors import PortiqueError

    sig = containers.signal_of(args.signal)
    conn = containers.open_db()
    status = 0
    for ref in args.containers:
        try:
            containers.kill(conn, ref, sig)
        except PortiqueError as exc:
            sys.stderr.write(f"portique: {exc}\n")
            status = 1
            continue
        print(ref)
    return status
