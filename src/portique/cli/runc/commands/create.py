"""`create [flags] ID`: set the container up, its program blocked until `start`."""

from __future__ import annotations

import os

from portique.cli.runc.commands._common import ID
from portique.cli.runc.fastargs import INT, TEXT, Option, add_options, add_positionals, flag
from portique.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from portique.cli.runc.context import Context

# Flags `create` and `run` share (runc's names).
CREATE_OPTIONS = (
    Option("--bundle", "-b", kind=TEXT, default="", help="bundle directory (default: cwd)"),
    Option("--console-socket", kind=TEXT, default="", help="unix socket to send the pty master to"),
    Option("--pid-file", kind=TEXT, default="", help="write the init pid to this file"),
    flag("--no-pivot", help="use chroot-like move, not pivot_root"),
    flag(
        "--no-new-keyring",
        help="keep the caller's session keyring instead of a new one per container process",
    ),
    Option("--preserve-fds", kind=INT, default=0, help="pass fds 3..3+N-1 on to the container"),
)
OPTIONS = CREATE_OPTIONS
POSITIONALS = ID


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, OPTIONS)
    add_positionals(parser, POSITIONALS)


def resolve(args: argparse.Namespace) -> tuple[str, str | None, str | None]:
    """Absolute bundle, console socket and pid file paths (runc resolves them too)."""
    if args.preserve_fds < 0:
        raise InvalidArgument(f"--preserve-fds must not be negative: {args.preserve_fds}")
    bundle = os.path.abspath(args.bundle or os.getcwd())
    console = os.path.abspath(args.console_socket) if args.console_socket else None
    pid_file = checked_pid_file(args.pid_file)
    return bundle, console, pid_file


def checked_pid_file(text: str) -> str | None:
    """The absolute pid file path; its directory must exist (checked before
    anything is created, so the error names the path the user gave)."""
    if not text:
        return None
    path = os.path.abspath(text)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise InvalidArgument(f"pid file {text}: directory {parent} does not exist")
    return path


def run(args: argparse.Namespace, ctx: Context) -> int:
    bundle, console, pid_file = resolve(args)
    ctx.log.debug(f"create {args.container_id} from {bundle}")
    ctx.runtime().create(
        args.container_id,
        bundle,
        console_socket=console,
        pid_file=pid_file,
        no_pivot=args.no_pivot,
        preserve_fds=args.preserve_fds,
        no_new_keyring=args.no_new_keyring,
    )
    return 0
