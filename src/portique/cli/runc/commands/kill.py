"""`kill [--all] ID [SIGNAL]`: signal the container's init (default SIGTERM)."""

from __future__ import annotations

import argparse

from portique.cli.runc.commands._common import add_id
from portique.cli.runc.context import Context
from portique.cli.runc.signals import parse_signal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--all", "-a", action="store_true", help="signal every process of the container"
    )
    add_id(parser)
    parser.add_argument("signal", nargs="?", default="SIGTERM")


def run(args: argparse.Namespace, ctx: Context) -> int:
    sig = parse_signal(args.signal)
    ctx.runtime().kill(args.container_id, sig, all=args.all)
    return 0
