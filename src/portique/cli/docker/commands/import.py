"""`portique import [-c CHANGE]... [-m MESSAGE] FILE|- [REPOSITORY[:TAG]]`.

Makes a one-layer image from a root filesystem tarball (plain, gzip or zstd),
like `docker import`, and prints its id. (`import` is a Python keyword;
importlib still loads a module of that name.)
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="file|URL|-")
    parser.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    parser.add_argument(
        "-c",
        "--change",
        action="append",
        default=[],
        help="apply a Dockerfile instruction to the created image",
    )
    parser.add_argument("-m", "--message", default="", help="set a commit message")
    parser.add_argument("--platform", help="set the platform (only the host's is accepted)")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.errors import InvalidArgument, NotFound
    from portique.image.importer import import_rootfs, parse_changes

    source: str = args.source
    if "://" in source:
        raise InvalidArgument(
            f"cannot import from {source}: portique imports from a file or stdin only",
            hint="download it first, then run 'portique import FILE'",
        )
    if args.platform:
        from portique.oci.image import host_platform, parse_platform

        if (
            parse_platform(args.platform).architecture
            != parse_platform(host_platform()).architecture
        ):
            raise InvalidArgument(f"cannot import for platform {args.platform}: not the host's")
    parse_changes(args.change)  # reject a bad --change before reading the tarball
    imgs = eng.images
    if source == "-":
        if sys.stdin.isatty():
            raise InvalidArgument("import from stdin, but stdin is a terminal")
        record = import_rootfs(
            imgs, sys.stdin.buffer, args.reference, changes=args.change, message=args.message
        )
    else:
        try:
            f = open(source, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise NotFound(f"no such file: {source}") from None
        except IsADirectoryError:
            raise InvalidArgument(f"cannot import {source}: it is a directory") from None
        with f:
            record = import_rootfs(
                imgs,
                f,
                args.reference,
                changes=args.change,
                message=args.message,
                source_name=source,
            )
    from portique.engine import events

    if args.reference:
        from portique.engine.images import familiar

        events.image_record(eng, record, "tag", familiar(args.reference))
    events.image_record(eng, record, "import")
    sys.stdout.write(f"{record.id}\n")
    return 0
