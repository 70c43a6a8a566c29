"""`portique inspect [-f FORMAT] [--type container|image|volume] NAME...`

Each name is looked up as a container, then an image, then a volume (or only
as the --type given); the engine gives each object as the API does.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.engine.engine import Engine

TYPE_NAMES = {
    "container": "container.InspectResponse",
    "image": "image.InspectResponse",
    "volume": "volume.Volume",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--format", default=None, help="format output using a Go template")
    parser.add_argument(
        "--type", default="", choices=["", "container", "image", "volume"], help="only this kind"
    )
    parser.add_argument("-s", "--size", action="store_true", help="display total file sizes")
    parser.add_argument("names", nargs="+", metavar="NAME")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.image import print_inspect
    from portique.cli.docker.each import collect, report_missings
    from portique.engine import containers, images, volumes
    from portique.errors import InvalidArgument, NoSuchObject

    lookups: dict[str, Callable[[str], dict[str, Any]]] = {
        "container": lambda ref: containers.inspect(eng, ref, size=args.size),
        "image": lambda ref: images.inspect(eng, ref),
        "volume": lambda ref: volumes.inspect(eng, ref),
    }
    kinds = [args.type] if args.type else list(lookups)

    def find(ref: str) -> tuple[dict[str, Any], str]:
        for kind in kinds:
            try:
                return lookups[kind](ref), TYPE_NAMES[kind]
            except (NoSuchObject, InvalidArgument):  # an image name that cannot be one
                continue
        raise NoSuchObject(args.type or "object", ref)

    found, missing = collect(args.names, find)
    status = 0
    if found or not args.format:
        # Docker prints "[]" even when nothing was found.
        status = print_inspect([obj for obj, _ in found], args.format, [t for _, t in found])
    return report_missings(missing) or status
