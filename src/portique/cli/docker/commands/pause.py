"""`portique pause CONTAINER...`"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(args: argparse.Namespace) -> int:
    from portique.cli.docker.each import for_each_container
    from portique.engine import containers

    conn = containers.open_db()
    return for_each_container(args.containers, lambda ref: containers.pause(conn, ref))
