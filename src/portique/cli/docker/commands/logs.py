"""`portique logs [-f] [--tail N] [--since T] [--until T] [-t] CONTAINER`"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--follow", action="store_true", help="follow log output")
    parser.add_argument(
        "-n", "--tail", default="all", help='number of lines to show from the end ("all")'
    )
    parser.add_argument(
        "--since", default="", help="show logs since a timestamp or relative time (42m)"
    )
    parser.add_argument("--until", default="", help="show logs before a timestamp or relative time")
    parser.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    parser.add_argument("--details", action="store_true", help="show extra details")
    parser.add_argument("container")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import logs
    from portique.errors import InvalidArgument
    from portique.termio import write_all

    if args.tail in ("all", ""):
        tail = -1
    else:
        try:
            tail = int(args.tail)
        except ValueError:
            raise InvalidArgument(f'invalid value for "tail": {args.tail!r}') from None
    records = logs.container_logs(
        eng,
        args.container,
        follow=args.follow,
        tail=tail,
        since_ns=logs.parse_since(args.since) if args.since else 0,
        until_ns=logs.parse_since(args.until) if args.until else 0,
    )
    for rec in records:
        text = f"{rec.time} {rec.log}" if args.timestamps else rec.log
        write_all(2 if rec.stream == "stderr" else 1, text.encode("utf-8", "surrogateescape"))
    return 0
