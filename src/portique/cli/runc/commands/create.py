"""`create [flags] ID`: set the container up, its program blocked until `start`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from portique.cli.runc.commands._common import add_id
from portique.cli.runc.context import Context
from portique.errors import InvalidArgument


def add_create_flags(parser: argparse.ArgumentParser) -> None:
    """Flags `create` and `run` share (runc's names)."""
    parser.add_argument("--bundle", "-b", default="", help="bundle directory (default: cwd)")
    parser.add_argument(
        "--console-socket", default="", help="unix socket to send the pty master to"
    )
    parser.add_argument("--pid-file", default="", help="write the init pid to this file")
    parser.add_argument(
        "--no-pivot", action="store_true", help="use chroot-like move, not pivot_root"
    )
    parser.add_argument(
        "--no-new-keyring",
        action="store_true",
        help="keep the caller's session keyring instead of a new one per container process",
    )
    parser.add_argument(
        "--preserve-fds", type=int, default=0, help="pass fds 3..3+N-1 on to the container"
    )
    add_id(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_create_flags(parser)


def resolve(args: argparse.Namespace) -> tuple[Path, Path | None, Path | None]:
    """Absolute bundle, console socket and pid file paths (runc resolves them too)."""
    if args.preserve_fds < 0:
        raise InvalidArgument(f"--preserve-fds must not be negative: {args.preserve_fds}")
    bundle = Path(os.path.abspath(args.bundle or os.getcwd()))
    console = Path(os.path.abspath(args.console_socket)) if args.console_socket else None
    pid_file = checked_pid_file(args.pid_file)
    return bundle, console, pid_file


def checked_pid_file(text: str) -> Path | None:
    """The absolute pid file path; its directory must exist (checked before
    anything is created, so the error names the path the user gave)."""
    if not text:
        return None
    path = Path(os.path.abspath(text))
    if not path.parent.is_dir():
        raise InvalidArgument(f"pid file {text}: directory {path.parent} does not exist")
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
