"""`delete [--force] ID`: remove a stopped (or, with --force, any) container."""

from __future__ import annotations

from portique.cli.runc.commands._common import ID
from portique.cli.runc.fastargs import add_options, add_positionals, flag
from portique.errors import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from portique.cli.runc.context import Context

OPTIONS = (flag("--force", "-f", help="kill the container first if it runs"),)
POSITIONALS = ID


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, OPTIONS)
    add_positionals(parser, POSITIONALS)


def run(args: argparse.Namespace, ctx: Context) -> int:
    try:
        ctx.runtime().delete(args.container_id, force=args.force)
    except NotFound:
        # runc: `delete --force` of a container that is already gone succeeds
        # (containerd's shim relies on it when cleaning up after a crash).
        if not args.force:
            raise
    return 0
