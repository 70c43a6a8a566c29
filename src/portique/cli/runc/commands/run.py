"""`run [-d] [--keep] [flags] ID`: create and start; in the foreground, wait,
delete the container (unless --keep) and exit with its status."""

from __future__ import annotations

import os

from portique.cli.runc.commands._common import ID
from portique.cli.runc.commands.create import CREATE_OPTIONS, resolve
from portique.cli.runc.fastargs import add_options, add_positionals, flag
from portique.jsonc import loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from portique.cli.runc.context import Context

OPTIONS = (
    flag("--detach", "-d", help="do not wait for the container"),
    flag("--no-subreaper", help="accepted for runc compatibility (ignored)"),
    flag("--keep", help="do not delete the container after it exits"),
    *CREATE_OPTIONS,
)
POSITIONALS = ID


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, OPTIONS)
    add_positionals(parser, POSITIONALS)


def wants_terminal(bundle: str) -> bool:
    """process.terminal from the bundle's config; False if it cannot be read
    (the runtime then reports the broken config itself)."""
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            spec = loads(f.read())
        return bool(spec["process"]["terminal"]) is True
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return False


def run(args: argparse.Namespace, ctx: Context) -> int:
    bundle, console, pid_file = resolve(args)
    rt = ctx.runtime()
    cid = args.container_id
    if args.detach:
        rt.run(
            cid,
            bundle,
            detach=True,
            console_socket=console,
            pid_file=pid_file,
            no_pivot=args.no_pivot,
            preserve_fds=args.preserve_fds,
            no_new_keyring=args.no_new_keyring,
        )
        return 0
    from portique.cli.runc.forward import forward_signals

    with forward_signals(lambda sig: rt.kill(cid, sig)):
        return _run_foreground(args, ctx, bundle, console, pid_file)


def _run_foreground(
    args: argparse.Namespace,
    ctx: Context,
    bundle: str,
    console: str | None,
    pid_file: str | None,
) -> int:
    rt = ctx.runtime()
    cid = args.container_id
    if console is not None or not wants_terminal(bundle):
        return rt.run(
            cid,
            bundle,
            console_socket=console,
            pid_file=pid_file,
            no_pivot=args.no_pivot,
            preserve_fds=args.preserve_fds,
            no_new_keyring=args.no_new_keyring,
            keep=args.keep,
        )
    # Foreground with a terminal and nobody to hand the pty to: relay it here.
    from portique.cli.runc.console import console_listener, reap, spawn_relay
    from portique.termio import raw_terminal

    with console_listener() as (path, listener), raw_terminal(0):
        helper = spawn_relay(listener)
        listener.close()
        try:
            status = rt.run(
                cid,
                bundle,
                console_socket=path,
                pid_file=pid_file,
                no_pivot=args.no_pivot,
                preserve_fds=args.preserve_fds,
                no_new_keyring=args.no_new_keyring,
                keep=args.keep,
            )
        except BaseException:
            reap(helper, kill=True)
            raise
        reap(helper)
    return status
