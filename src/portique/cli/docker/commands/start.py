"""`portique start [-a] [-i] CONTAINER...`"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--attach", action="store_true", help="attach STDOUT/STDERR")
    parser.add_argument("-i", "--interactive", action="store_true", help="attach STDIN")
    parser.add_argument("--detach-keys", default="ctrl-p,ctrl-q", help="key sequence for detaching")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.each import for_each
    from portique.engine import attach, containers
    from portique.errors import InvalidArgument

    if args.attach or args.interactive:
        if len(args.containers) > 1:
            raise InvalidArgument("you cannot start and attach multiple containers at once")
        from portique.engine import events
        from portique.engine import state as st

        found = containers.get(eng, args.containers[0])
        if st.can_start(found.status):
            events.container(eng, found, "attach")  # dockerd: the client attaches, then starts
        row = containers.start(eng, found.id, hold=True)
        tty = bool(row.config["Config"].get("Tty"))
        opts = attach.AttachOptions(
            stdin=args.interactive, tty=tty, detach_keys=attach.parse_detach_keys(args.detach_keys)
        )
        if not st.can_start(found.status):
            events.container(eng, row, "attach")
        code = attach.attach(eng.paths(row.id), opts)
        return 0 if code == attach.DETACHED else code
    # A failed start keeps its own code (127: the command was not found), as before.
    return for_each(args.containers, lambda ref: containers.start(eng, ref), keep_exit_code=True)
