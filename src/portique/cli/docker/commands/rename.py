"""`portique rename CONTAINER NEW_NAME`"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container")
    parser.add_argument("new_name")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import containers

    containers.rename(eng, args.container, args.new_name)
    return 0
