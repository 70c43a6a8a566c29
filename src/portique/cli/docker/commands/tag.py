"""`portique tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]`."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    parser.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def run(args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.image import open_images

    open_images().tag(args.source, args.target)
    return 0
