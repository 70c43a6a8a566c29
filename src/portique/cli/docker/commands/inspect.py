"""`portique inspect [-f FORMAT] [--type container|image|volume] NAME...`

Containers first, then images (through the image command's code), then volumes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--format", default=None, help="format output using a Go template")
    parser.add_argument(
        "--type", default="", choices=["", "container", "image", "volume"], help="only this kind"
    )
    parser.add_argument("-s", "--size", action="store_true", help="display total file sizes")
    parser.add_argument("names", nargs="+", metavar="NAME")


def _container(conn: Any, name: str, size: bool) -> dict[str, Any] | None:
    from portique.engine import containers, present
    from portique.errors import NotFound

    try:
        row = containers.get(conn, name)
    except NotFound:
        return None
    out = present.inspect(row)
    if size:
        out["SizeRw"] = containers.container_size(row.id)
    return out


def _image(name: str) -> dict[str, Any] | None:
    from portique.cli.docker.commands import image
    from portique.errors import InvalidArgument, NotFound

    imgs = image.open_images()
    try:
        return image.inspect_image(imgs.resolve(name))
    except (NotFound, InvalidArgument):
        return None
    finally:
        imgs.close()


def _volume(conn: Any, name: str) -> dict[str, Any] | None:
    from portique.cli.docker.commands.volume import volume_dict
    from portique.engine import db

    vol = db.get_volume(conn, name)
    return volume_dict(vol) if vol else None


def run(args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.image import print_inspect
    from portique.engine import containers

    conn = containers.open_db()
    found: list[dict[str, Any]] = []
    kinds: list[str] = []
    missing: list[str] = []
    for name in args.names:
        obj, kind = None, ""
        if args.type in ("", "container"):
            obj, kind = _container(conn, name, args.size), "container.InspectResponse"
        if obj is None and args.type in ("", "image"):
            obj, kind = _image(name), "image.InspectResponse"
        if obj is None and args.type in ("", "volume"):
            obj, kind = _volume(conn, name), "volume.Volume"
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
