"""`portique inspect [-f FORMAT] [--type container|image|volume] NAME...`

Containers first, then images (through the image command's code), then volumes.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--format", default=None, help="format output using a Go template")
    parser.add_argument(
        "--type", default="", choices=["", "container", "image", "volume"], help="only this kind"
    )
    parser.add_argument("-s", "--size", action="store_true", help="display total file sizes")
    parser.add_argument("names", nargs="+", metavar="NAME")


def _container(eng: Engine, name: str, size: bool) -> dict[str, Any] | None:
    from portique.engine import containers, present
    from portique.errors import NotFound

    try:
        row = containers.get(eng, name)
    except NotFound:
        return None
    out = present.inspect(eng, row)
    if size:
        out["SizeRw"] = containers.container_size(eng, row.id)
    return out


def _image(eng: Engine, name: str) -> dict[str, Any] | None:
    from portique.cli.docker.commands import image
    from portique.errors import InvalidArgument, NotFound

    try:
        return image.inspect_image(eng.images.resolve(name))
    except (NotFound, InvalidArgument):
        return None


def _volume(eng: Engine, name: str) -> dict[str, Any] | None:
    from portique.cli.docker.commands.volume import volume_dict
    from portique.engine import db

    vol = db.get_volume(eng.db, name)
    return volume_dict(vol) if vol else None


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.image import print_inspect

    found: list[dict[str, Any]] = []
    kinds: list[str] = []
    missing: list[str] = []
    for name in args.names:
        obj, kind = None, ""
        if args.type in ("", "container"):
            obj, kind = _container(eng, name, args.size), "container.InspectResponse"
        if obj is None and args.type in ("", "image"):
            obj, kind = _image(eng, name), "image.InspectResponse"
        if obj is None and args.type in ("", "volume"):
            obj, kind = _volume(eng, name), "volume.Volume"
        if obj is None:
            missing.append(name)
        else:
            found.append(obj)
            kinds.append(kind)
    status = 0
    if found or not args.format:
        status = print_inspect(found, args.format, kinds)
    for name in missing:
        sys.stderr.write(f"portique: no such object: {name}\n")
    return 1 if missing else status
