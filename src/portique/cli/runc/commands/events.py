"""`events [--stats] [--interval 5s] ID`: resource usage as JSON lines.

Each line is runc's event shape: {"type": "stats", "id": ID, "data": {...}}.
With --stats, one line and exit; otherwise a line every interval until the
container stops.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from portique.cli.runc.commands._common import add_id
from portique.cli.runc.context import Context
from portique.duration import parse_seconds
from portique.errors import InvalidArgument, NotFound, PortiqueError

if TYPE_CHECKING:
    from portique.runtime.cgroups import CgroupManager


def parse_duration(text: str) -> float:
    """Seconds from a Go duration string ("5s", "500ms", "1m30s"), greater than 0 as runc wants."""
    seconds = parse_seconds(text)
    if seconds <= 0:
        raise InvalidArgument(f"invalid duration {text!r}: it must be greater than 0")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stats", action="store_true", help="print one stats line and exit")
    parser.add_argument("--interval", default="5s", help="time between stats lines (Go duration)")
    add_id(parser)


def event_line(container_id: str, data: object, kind: str = "stats") -> str:
    """One event as runc writes it: compact, as Go's encoding/json does."""
    event: dict[str, object] = {"type": kind, "id": container_id}
    if data is not None:
        event["data"] = data
    return json.dumps(event, separators=(",", ":")) + "\n"


def _oom_count(manager: CgroupManager | None) -> int:
    if manager is None:
        return 0
    try:
        return manager.oom_kill_count()
    except (PortiqueError, OSError):
        return 0


def run(args: argparse.Namespace, ctx: Context) -> int:
    interval = parse_duration(args.interval)
    if interval <= 0:
        raise InvalidArgument(f"interval must be positive: {args.interval}")
    rt = ctx.runtime()
    cid = args.container_id
    state = rt.state(cid)
    if args.stats:
        if str(state.status) == "stopped":
            raise InvalidArgument(f"container {cid} is not running")
        sys.stdout.write(event_line(cid, rt.stats(cid)))
        return 0
    # Streaming: stats every interval, and an "oom" event whenever the
    # kernel's OOM killer has struck in the container's cgroup since.
    from portique.runtime.cgroups import open_manager

    manager: CgroupManager | None
    try:
        manager = open_manager(state.cgroups_path, cid)
    except (PortiqueError, OSError):
        manager = None
    ooms = _oom_count(manager)
    while True:
        try:
            state = rt.state(cid)
        except NotFound:
            return 0
        count = _oom_count(manager)
        if count > ooms:
            ooms = count
            sys.stdout.write(event_line(cid, None, "oom"))
        if str(state.status) == "stopped":
            sys.stdout.flush()
            return 0
        sys.stdout.write(event_line(cid, rt.stats(cid)))
        sys.stdout.flush()
        time.sleep(interval)
