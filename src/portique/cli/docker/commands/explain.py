"""`portique explain [--format text|json] CONTAINER`: what isolates a running
container, read from the kernel (engine/explain), for a learner or an auditor."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        "-f",
        choices=("text", "json"),
        default="text",
        help="text for people, json for programs (schema: docs/explain.md)",
    )
    parser.add_argument("container")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.explain_text import format_report
    from portique.engine.explain import explain_container

    report = explain_container(eng, args.container)
    sys.stdout.write(format_report(report, args.format))
    return 0
