"""`portique logs [-f] [--tail N] [--since T] [--until T] [-t] CONTAINER`"""

from __future__ import annotations

import argparse
import os
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
    from portique.engine import containers, db, logs
    from portique.engine.state import has_monitor
    from portique.errors import InvalidArgument

    row = containers.get(eng, args.container)
    path = str(eng.paths(row.id).log)
    if args.tail in ("all", ""):
        tail = -1
    else:
        try:
            tail = int(args.tail)
        except ValueError:
            raise InvalidArgument(f'invalid value for "tail": {args.tail!r}') from None
    since = logs.parse_since(args.since) if args.since else 0
    until = logs.parse_since(args.until) if args.until else 0
    try:
        offset = os.path.getsize(path)
    except OSError:
        offset = 0
    records = logs.tail_records(path, tail) if tail != 0 else []
    for rec in records:
        _emit(rec, args.timestamps, since, until)
    if args.follow:

        def running() -> bool:
            cur = db.get_container(eng.db, row.id)
            return cur is not None and has_monitor(containers.refresh(eng, cur).status)

        for rec in logs.follow(path, offset, running):
            _emit(rec, args.timestamps, since, until)
    return 0


def _emit(rec: object, timestamps: bool, since: int, until: int) -> None:
    from portique.engine.logs import LogRecord
    from portique.termio import write_all

    assert isinstance(rec, LogRecord)
    if since or until:
        t = rec.time_ns
        if since and t < since:
            return
        if until and t > until:
            return
    text = f"{rec.time} {rec.log}" if timestamps else rec.log
    fd = 2 if rec.stream == "stderr" else 1
    write_all(fd, text.encode("utf-8", "surrogateescape"))
