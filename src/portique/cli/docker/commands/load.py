"""`portique load [-i FILE] [-q]`: images from a docker-archive or OCI archive."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--input", help="read from tar archive file, instead of STDIN")
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")
    # Accepted for Docker compatibility: an archive's single platform is loaded.
    parser.add_argument("--platform", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.image import open_images
    from portique.errors import InvalidArgument, NotFound
    from portique.image.archive import load

    imgs = open_images()
    if args.input and args.input != "-":
        try:
            f = open(args.input, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise NotFound(f"no such file: {args.input}") from None
        with f:
            loaded = load(imgs, f)
    else:
        if sys.stdin.isatty():
            raise InvalidArgument(
                "requested load from stdin, but stdin is empty",
                hint="use the -i flag or redirect",
            )
        loaded = load(imgs, sys.stdin.buffer)
    for image in loaded:
        if image.tags:
            sys.stdout.write("".join(f"Loaded image: {t}\n" for t in image.tags))
        else:
            sys.stdout.write(f"Loaded image ID: {image.id}\n")
    return 0
