"""`portique stats [--no-stream] [-a] [--format] [CONTAINER...]`"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--all", action="store_true", help="show all containers")
    parser.add_argument("--no-stream", action="store_true", help="print once and exit")
    parser.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    parser.add_argument("--format", default=None, help="format output using a Go template")
    parser.add_argument("containers", nargs="*", metavar="CONTAINER")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.format import format_rows
    from portique.engine import containers, stats
    from portique.engine.state import Status, has_process
    from portique.errors import PortiqueError

    if args.containers:
        rows = [containers.get(eng, ref) for ref in args.containers]
    else:
        # Those with a process (running or paused), or all with -a.
        live = [str(s) for s in Status if has_process(s)]
        listed = containers.list_containers(
            eng, all=True, filters=None if args.all else {"status": live}
        )
        rows = [containers.get(eng, c["Id"]) for c in listed]
    # Bounded: without --no-stream, refresh until interrupted (at most a day).
    for _ in range(1 if args.no_stream else 86400):
        firsts = {}
        for r in rows:
            try:
                firsts[r.id] = stats.sample(eng, r)
            except PortiqueError:
                continue
        time.sleep(0.5)
        records = []
        for r in rows:
            try:
                second = stats.sample(eng, r)
            except PortiqueError:
                second = None
            if second is None or r.id not in firsts:
                records.append(
                    {k: "--" for k in stats.STATS_HEADERS}
                    | {
                        "ID": r.id[:12],
                        "Container": r.id[:12],
                        "Name": r.name,
                        "CPUPerc": "0.00%",
                        "MemPerc": "0.00%",
                        "MemUsage": "0B / 0B",
                        "NetIO": "0B / 0B",
                        "BlockIO": "0B / 0B",
                        "PIDs": "0",
                    }
                )
                continue
            records.append(stats.stats_row(r, firsts[r.id], second, args.no_trunc))
        if not args.no_stream:
            sys.stdout.write("\x1b[2J\x1b[H")
        sys.stdout.write(
            format_rows(
                args.format,
                records,
                default=stats.STATS_DEFAULT,
                headers=stats.STATS_HEADERS,
                context="*container.statsContext",
            )
        )
        sys.stdout.flush()
    return 0
