"""`portique tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    parser.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import images

    images.tag(eng, args.source, args.target)
    return 0
