"""`delete [--force] ID`: remove a stopped (or, with --force, any) container."""

from __future__ import annotations

import argparse

from portique.cli.runc.commands._common import add_id
from portique.cli.runc.context import Context
from portique.errors import NotFound


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force", "-f", action="store_true", help="kill the container first if it runs"
    )
    add_id(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    try:
        ctx.runtime().delete(args.container_id, force=args.force)
    except NotFound:
        # runc: `delete --force` of a container that is already gone succeeds
        # (containerd's shim relies on it when cleaning up after a crash).
        if not args.force:
            raise
    return 0
