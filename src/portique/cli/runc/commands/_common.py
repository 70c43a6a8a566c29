"""Small pieces the verbs share."""

from __future__ import annotations

import sys

from portique.cli.runc.fastargs import Positional, add_positionals

TYPE_CHECKING = False  # typing itself costs the hot verbs an import
if TYPE_CHECKING:
    import argparse
    from typing import Any

# The one positional of most verbs.
ID = (Positional("container_id", metavar="container-id"),)


def add_id(parser: argparse.ArgumentParser) -> None:
    add_positionals(parser, ID)


def print_json(obj: Any, *, indent: int | None = 2, newline: bool = True) -> None:
    """JSON on stdout; unindented output is compact, as Go's encoding/json writes it."""
    import json

    separators = (",", ":") if indent is None else None
    text = json.dumps(obj, indent=indent, separators=separators)
    sys.stdout.write(text + ("\n" if newline else ""))
    sys.stdout.flush()
