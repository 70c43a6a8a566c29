"""`portique run IMAGE [COMMAND] [ARG...]`: create + start, attached unless -d."""

from __future__ import annotations

import argparse
import sys

from portique.cli.docker.commands import create


def add_arguments(parser: argparse.ArgumentParser) -> None:
    create.add_arguments(parser, run=True)


def run(args: argparse.Namespace) -> int:
    from portique.engine import attach, containers, db, lifecycle
    from portique.engine.paths import ContainerPaths
    from portique.errors import InvalidArgument, PortiqueError

    if args.detach and args.rm and args.restart not in ("", "no"):
        raise PortiqueError("conflicting options: --restart and --rm")
    keys = attach.parse_detach_keys(args.detach_keys)
    if args.tty and args.interactive and not args.detach and not sys.stdin.isatty():
        raise InvalidArgument("the input device is not a TTY")
    row = create.create_from_args(args)
    conn = containers.open_db()
    try:
        lifecycle.start(row.id, hold=not args.detach)
    except PortiqueError:
        if args.rm:
            containers.remove_stopped(conn, row.id, volumes=True)
        raise
    if args.detach:
        print(row.id)
        return 0
    streams = {a.lower() for a in args.attach} or {"stdout", "stderr"}
    opts = attach.AttachOptions(
        stdin=args.interactive or "stdin" in streams,
        stdout="stdout" in streams,
        stderr="stderr" in streams,
        tty=args.tty,
        detach_keys=keys,
        sig_proxy=args.sig_proxy.lower() not in ("false", "0"),
    )
    code = attach.attach(ContainerPaths.of(row.id), opts)
    if code == attach.DETACHED:
        return 0
    if args.rm:
        from portique.engine.recovery import wait_removed

        # As Docker: return once the container is gone (files, mount, image use),
        # so that an `rmi` right after succeeds.
        wait_removed(conn, row.id)
    if code == 125:
        # The monitor went away without an exit frame: ask the DB.
        cur = containers.refresh(conn, db.get_container(conn, row.id) or row)
        return cur.exit_code if cur.status == "exited" else 125
    return code
