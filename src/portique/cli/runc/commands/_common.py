"""Small pieces the verbs share."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container_id", metavar="container-id")


def print_json(obj: Any, *, indent: int | None = 2, newline: bool = True) -> None:
    """JSON on stdout; unindented output is compact, as Go's encoding/json writes it."""
    separators = (",", ":") if indent is None else None
    text = json.dumps(obj, indent=indent, separators=separators)
    sys.stdout.write(text + ("\n" if newline else ""))
    sys.stdout.flush()
