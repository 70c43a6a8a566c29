"""`portique top CONTAINER [ps OPTIONS]`"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container")
    parser.add_argument("ps_args", nargs=argparse.REMAINDER)


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.format import render_table
    from portique.engine import stats

    header, rows = stats.top(eng, args.container, args.ps_args)
    sys.stdout.write(render_table([header, *rows]))
    return 0
