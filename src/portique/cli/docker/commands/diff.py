"""`portique diff CONTAINER`: the files a container added (A), changed (C) and
deleted (D), as Docker prints them (engine/commit.py)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import commit
    from portique.image.changes import KIND_LETTERS

    found = commit.changes(eng, args.container)
    sys.stdout.write("".join(f"{KIND_LETTERS[c['Kind']]} {c['Path']}\n" for c in found))
    return 0
