"""`portique save [-o FILE] [--format docker-archive|oci-archive] IMAGE...`.

Writes a tar to FILE (atomically: a crash leaves the old file or none) or to
stdout, refusing a terminal as Docker does.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("-o", "--output", help="write to a file, instead of STDOUT")
    parser.add_argument(
        "--format",
        default="docker-archive",
        choices=("docker-archive", "oci-archive"),
        help="archive format (default docker-archive)",
    )
    # Accepted for Docker compatibility: every image is saved for its one platform.
    parser.add_argument("--platform", help=argparse.SUPPRESS)
    parser.add_argument("-q", "--quiet", action="store_true", help=argparse.SUPPRESS)


def run(eng: Engine, args: argparse.Namespace) -> int:
    import contextlib
    from pathlib import Path

    from portique.engine import images
    from portique.errors import InvalidArgument
    from portique.fileio import atomic_file
    from portique.image.save import save

    # A missing image is the user's: Docker's words, before any output.
    records = [images.resolve(eng, ref) for ref in args.images]
    imgs = eng.images
    if not args.output:
        if sys.stdout.isatty():
            raise InvalidArgument(
                "cowardly refusing to save to a terminal",
                hint="use the -o flag or redirect",
            )
        sys.stdout.flush()
        save(imgs, args.images, sys.stdout.buffer, format=args.format)
        sys.stdout.buffer.flush()
        _saved(eng, records)
        return 0
    target = Path(args.output)
    if target.is_dir():
        raise InvalidArgument(f"cannot save to {target}: it is a directory")
    with contextlib.ExitStack() as stack:
        try:
            f = stack.enter_context(atomic_file(target, 0o666, fsync=True))  # as open()
        except OSError as exc:
            raise InvalidArgument(
                f"cannot save to {target}: {(exc.strerror or str(exc)).lower()}"
            ) from None
        save(imgs, args.images, f, format=args.format)
    _saved(eng, records)
    return 0


def _saved(eng: Engine, records: list[Any]) -> None:
    """dockerd's `save` event, once per image saved."""
    from portique.engine import events

    for record in {r.id: r for r in records}.values():
        events.image_record(eng, record, "save")
