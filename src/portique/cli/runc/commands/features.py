"""`features`: what this runtime supports, as JSON (runtime-spec features.md)."""

from __future__ import annotations

import argparse
import json
import sys

from portique.cli.runc.context import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, ctx: Context) -> int:
    from portique.runtime.features import features

    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
    return 0
