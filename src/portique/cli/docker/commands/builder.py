"""`portique builder build|prune`: the build management group."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="builder_command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("build", add_help=False, prefix_chars="\0")
    p.add_argument("rest", nargs="*")
    p.set_defaults(builder_parser=type(parser))
    p = sub.add_parser("prune")
    p.add_argument(
        "-a", "--all", action="store_true", help="remove all unused build cache, not just dangling"
    )
    p.add_argument("--filter", action="append", default=[], help='filter values (e.g. "until=24h")')
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--keep-storage", default=None, help=argparse.SUPPRESS)


def run(eng: Engine, args: argparse.Namespace) -> int:
    if args.builder_command == "build":
        from portique.cli.docker.commands import build

        parser = args.builder_parser(prog="portique builder build")
        build.add_arguments(parser)
        return build.run(eng, parser.parse_args(args.rest))
    return prune(eng, args)


def prune(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.image import confirm
    from portique.cli.docker.filters import from_flags
    from portique.engine import buildcache
    from portique.engine import filters as flt
    from portique.engine.images import parse_until
    from portique.errors import InvalidArgument
    from portique.units import human_size

    if args.keep_storage is not None:
        raise InvalidArgument("--keep-storage is not supported: use --filter until=DURATION")
    filters = from_flags(args.filter)
    for value in flt.check(filters, buildcache.PRUNE_FILTERS).get("until", []):
        parse_until(value)  # a bad filter fails before the prompt
    if not args.force:
        what = "all build cache" if args.all else "all dangling build cache"
        if not confirm(f"WARNING! This will remove {what}."):
            return 0
    ids, reclaimed = buildcache.prune(eng, all=args.all, filters=filters)
    if ids:
        sys.stdout.write("Deleted build cache objects:\n" + "".join(f"{i}\n" for i in ids) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0
