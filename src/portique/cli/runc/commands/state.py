"""`state ID`: the container's state as runc prints it (OCI state JSON)."""

from __future__ import annotations

from portique.cli.runc.commands._common import ID, add_id, print_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from portique.cli.runc.context import Context

OPTIONS = ()
POSITIONALS = ID


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_id(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    state = ctx.runtime().state(args.container_id)
    # runc prints this indented by two spaces, with no final newline.
    print_json(state.to_runc_json(), newline=False)
    return 0
