"""`start ID`: run the user program of a created container."""

from __future__ import annotations

from portique.cli.runc.commands._common import ID, add_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from portique.cli.runc.context import Context

OPTIONS = ()
POSITIONALS = ID


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_id(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    ctx.runtime().start(args.container_id)
    return 0
