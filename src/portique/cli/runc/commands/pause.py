"""`pause ID` and `resume ID`: freeze and thaw the container's cgroup."""

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
    rt = ctx.runtime()
    if args.verb == "resume":
        rt.resume(args.container_id)
    else:
        rt.pause(args.container_id)
    return 0
