"""`portique run IMAGE [COMMAND] [ARG...]`: create + start, attached unless -d."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from portique.cli.docker.commands import create

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    create.add_arguments(parser, run=True)


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import attach, containers, lifecycle
    from portique.errors import InvalidArgument, NoSuchObject, PortiqueError

    if args.detach and args.rm and args.restart not in ("", "no"):
        raise PortiqueError("conflicting options: --restart and --rm")
    keys = attach.parse_detach_keys(args.detach_keys)
    if args.tty and args.interactive and not args.detach and not sys.stdin.isatty():
        raise InvalidArgument("the input device is not a TTY")
    create.check_cidfile(args.cidfile)
    from portique.engine import prefork

    # The monitor forks now and readies itself for the start (a cold one loads
    # its modules, a warm server's opens the database) while the row is made.
    forked = prefork.fork_early(eng, hold=not args.detach)
    try:
        try:
            row = create.create_from_args(eng, args)
        except NoSuchObject as exc:
            raise PortiqueError(str(exc)) from None  # `docker run` exits 125 for these
        create.write_cidfile(args.cidfile, row.id)
        if not args.detach:
            from portique.engine import events

            events.container(eng, row, "attach")  # dockerd: the client attaches, then starts
        try:
            lifecycle.launch(eng, row.id, hold=not args.detach, forked=forked)
        except PortiqueError:
            if args.rm:
                containers.remove_stopped(eng, row.id, volumes=True)
            raise
    finally:
        if forked is not None:
            forked.cancel()  # no container to start after all (nothing once started)
    if args.detach:
        print(row.id)
        return 0
    return _attached(eng, args, row, keys)


def _attached(eng: Engine, args: argparse.Namespace, row: Any, keys: bytes) -> int:
    from portique.engine import attach, containers
    from portique.engine.recovery import wait_removed

    streams = {a.lower() for a in args.attach} or {"stdout", "stderr"}
    opts = attach.AttachOptions(
        stdin=args.interactive or "stdin" in streams,
        stdout="stdout" in streams,
        stderr="stderr" in streams,
        tty=args.tty,
        detach_keys=keys,
        sig_proxy=args.sig_proxy.lower() not in ("false", "0"),
    )
    code = attach.attach(eng.paths(row.id), opts)
    if code == attach.DETACHED:
        return 0
    if args.rm:
        # As Docker: return once the container is gone (files, mount, image use),
        # so that an `rmi` right after succeeds.
        wait_removed(eng, row.id)
    if code == 125:
        # The monitor went away without an exit frame: ask the engine.
        recorded = containers.recorded_exit(eng, row)
        return 125 if recorded is None else recorded
    return code
