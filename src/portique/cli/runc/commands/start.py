"""`start ID`: run the user program of a created container."""

from __future__ import annotations

import argparse

from portique.cli.runc.commands._common import add_id
from portique.cli.runc.context import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_id(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    ctx.runtime().start(args.container_id)
    return 0
