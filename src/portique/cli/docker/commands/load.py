"""`portique load [-i FILE] [-q]`: images from a docker-archive or OCI archive."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--input", help="read from tar archive file, instead of STDIN")
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")
    parser.add_argument(
        "--platform", help="load this platform of a multi-platform image (default: the host's)"
    )


def _progress(quiet: bool) -> Callable[[str, int, int], None] | None:
    """Docker's "Loading layer [====>   ]" lines, redrawn in place, on a terminal only."""
    if quiet or not sys.stdout.isatty():
        return None
    from portique.units import human_size

    last: dict[str, int] = {}

    def show(digest: str, done: int, total: int) -> None:
        width = 50
        filled = width * done // total if total else width
        if last.get(digest) == filled and done != total:
            return  # redraw only when the bar moves
        last[digest] = filled
        bar = "=" * max(filled - 1, 0) + (">" if filled < width else "=") + " " * (width - filled)
        sizes = f"{human_size(done)}/{human_size(total)}"
        end = "\n" if done >= total else ""
        sys.stdout.write(f"\r{digest[7:19]}: Loading layer [{bar}]  {sizes}{end}")
        sys.stdout.flush()

    return show


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.errors import PortiqueError

    try:
        return _load(eng, args)
    except PortiqueError as exc:
        sys.stderr.write(f"portique: {exc}\n")
        return 1  # `docker load` fails with status 1, whatever the daemon said


def _load(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine.images import load
    from portique.errors import InvalidArgument, NotFound

    if args.input and args.input != "-":
        try:
            f = open(args.input, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise NotFound(f"no such file: {args.input}") from None
        with f:
            loaded = load(eng, f, progress=_progress(args.quiet), platform=args.platform)
    else:
        if sys.stdin.isatty():
            raise InvalidArgument(
                "requested load from stdin, but stdin is empty",
                hint="use the -i flag or redirect",
            )
        loaded = load(eng, sys.stdin.buffer, progress=_progress(args.quiet), platform=args.platform)
    for image in loaded:
        if image.tags:
            sys.stdout.write("".join(f"Loaded image: {t}\n" for t in image.tags))
        else:
            sys.stdout.write(f"Loaded image ID: {image.id}\n")
    return 0
