"""`portique top CONTAINER [ps OPTIONS]`"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container")
    parser.add_argument("ps_args", nargs=argparse.REMAINDER)


def run(args: argparse.Namespace) -> int:
    from portique.cli.docker.format import render_table
    from portique.engine import containers, stats

    row = containers.get(containers.open_db(), args.container)
    header, rows = stats.top(row, args.ps_args)
    sys.stdout.write(render_table([header, *rows]))
    return 0
