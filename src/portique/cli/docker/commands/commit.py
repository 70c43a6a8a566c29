"""`portique commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]`: a new image from a
container's changes (engine/commit.py); prints the image id, as Docker."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from portique.cli.docker.commands.pull import parse_bool

    parser.add_argument("-a", "--author", default="", help='author (e.g., "John Hannibal Smith")')
    parser.add_argument(
        "-c", "--change", action="append", default=[], help="apply Dockerfile instruction"
    )
    parser.add_argument("-m", "--message", default="", help="commit message")
    parser.add_argument(
        "-p",
        "--pause",
        type=parse_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="pause container during commit (default true)",
    )
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("reference", nargs="?", default="", metavar="REPOSITORY[:TAG]")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import commit

    image_id = commit.commit(
        eng,
        args.container,
        repo=args.reference,
        comment=args.message,
        author=args.author,
        pause=args.pause,
        changes=args.change,
    )
    print(image_id)
    return 0
