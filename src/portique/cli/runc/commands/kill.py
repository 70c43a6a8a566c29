"""`kill [--all] ID [SIGNAL]`: signal the container's init (default SIGTERM)."""

from __future__ import annotations

from portique.cli.runc.commands._common import ID
from portique.cli.runc.fastargs import OPTIONAL, Positional, add_options, add_positionals, flag
from portique.cli.runc.signals import parse_signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from portique.cli.runc.context import Context

OPTIONS = (flag("--all", "-a", help="signal every process of the container"),)
POSITIONALS = (*ID, Positional("signal", OPTIONAL, default="SIGTERM"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, OPTIONS)
    add_positionals(parser, POSITIONALS)


def run(args: argparse.Namespace, ctx: Context) -> int:
    sig = parse_signal(args.signal)
    ctx.runtime().kill(args.container_id, sig, all=args.all)
    return 0
