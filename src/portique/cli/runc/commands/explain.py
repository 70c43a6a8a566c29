"""`explain [--format text|json] ID`: what isolates a running container of this
runtime, read from the kernel (the same report as `portique explain`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from portique.cli.runc.commands._common import add_id
from portique.cli.runc.context import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", "-f", choices=("text", "json"), default="text")
    add_id(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from portique.cli.explain_text import format_report
    from portique.engine.explain import explain_runtime

    report = explain_runtime(Path(ctx.root), args.container_id)
    sys.stdout.write(format_report(report, args.format))
    return 0
