"""`portique push [-q] [--tls-verify=false] NAME[:TAG]` with Docker's output."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from portique.cli.docker.commands.pull import add_registry_arguments

    parser.add_argument("name", metavar="NAME[:TAG]")
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    parser.add_argument(
        "-a", "--all-tags", action="store_true", help="push all tags of the repository"
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="upload blobs in chunks of this many bytes (default: one request up to 64 MiB)",
    )
    add_registry_arguments(parser)


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.pull import ProgressPrinter, make_client
    from portique.engine import registry
    from portique.oci.reference import parse_reference

    as_typed = parse_reference(args.name, default_tag=None)
    out = sys.stdout
    printer = None if args.quiet else ProgressPrinter(out, out.isatty())
    refs = registry.push_refs(eng, args.name, all_tags=args.all_tags)
    if printer is not None and not args.all_tags and as_typed.tag is None:
        out.write("Using default tag: latest\n")
    if printer is not None:
        out.write(f"The push refers to repository [{as_typed.repository}]\n")
    client = make_client(args)
    for ref in refs:
        (result,) = registry.push(
            eng, str(ref), progress=printer, client=client, chunk_size=args.chunk_size
        )
        if printer is not None:
            out.write(f"{ref.tag}: digest: {result.digest} size: {result.size}\n")
        else:
            out.write(f"{ref.repository}@{result.digest}\n")
    return 0
