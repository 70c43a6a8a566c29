"""`portique start [-a] [-i] CONTAINER...`"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--attach", action="store_true", help="attach STDOUT/STDERR")
    parser.add_argument("-i", "--interactive", action="store_true", help="attach STDIN")
    parser.add_argument("--detach-keys", default="ctrl-p,ctrl-q", help="key sequence for detaching")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import attach, containers
    from portique.errors import InvalidArgument, PortiqueError

    if args.attach or args.interactive:
        if len(args.containers) > 1:
            raise InvalidArgument("you cannot start and attach multiple containers at once")
        row = containers.start(eng, args.containers[0], hold=True)
        tty = bool(row.config["Config"].get("Tty"))
        opts = attach.AttachOptions(
            stdin=args.interactive, tty=tty, detach_keys=attach.parse_detach_keys(args.detach_keys)
        )
        code = attach.attach(eng.paths(row.id), opts)
        return 0 if code == attach.DETACHED else code
    status = 0
    for ref in args.containers:
        try:
            containers.start(eng, ref)
        except PortiqueError as exc:
            sys.stderr.write(f"portique: {exc}\n")
            status = exc.exit_code
            continue
        print(ref)
    return status
