"""`portique rename CONTAINER NEW_NAME`"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container")
    parser.add_argument("new_name")


def run(args: argparse.Namespace) -> int:
    from portique.engine import containers

    containers.rename(containers.open_db(), args.container, args.new_name)
    return 0
