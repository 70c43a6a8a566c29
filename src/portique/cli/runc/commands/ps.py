"""`ps [--format table|json] ID [ps options]`: the container's processes.

json is the list of host pids; table filters `ps -ef` (or the given ps
options) to the container's pids, as runc does.
"""

from __future__ import annotations

import argparse
import sys

from portique.cli.runc.commands._common import add_id, print_json
from portique.cli.runc.context import Context
from portique.errors import InvalidArgument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", "-f", choices=("table", "json"), default="table")
    add_id(parser)
    parser.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="ps options")


def filter_ps(output: str, pids: list[int]) -> str:
    """Keep the header and the lines of `ps` output whose PID column is in `pids`."""
    lines = output.splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    try:
        column = header.index("PID")
    except ValueError:
        raise InvalidArgument("ps output has no PID column") from None
    wanted = set(pids)
    kept = [lines[0]]
    for line in lines[1:]:
        fields = line.split(None, column + 1)
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            kept.append(line)
    return "\n".join(kept) + "\n"


def run(args: argparse.Namespace, ctx: Context) -> int:
    pids = ctx.runtime().ps(args.container_id)
    if args.format == "json":
        print_json(pids, indent=None)
        return 0
    import subprocess

    ps_args = [a for a in args.ps_args if a != "--"] or ["-ef"]
    try:
        out = subprocess.run(
            ["ps", *ps_args], check=True, capture_output=True, text=True, timeout=30
        ).stdout
    except FileNotFoundError:
        raise InvalidArgument("ps is not installed: use --format json") from None
    except subprocess.CalledProcessError as exc:
        raise InvalidArgument(f"ps {' '.join(ps_args)} failed: {exc.stderr.strip()}") from None
    sys.stdout.write(filter_ps(out, pids))
    return 0
