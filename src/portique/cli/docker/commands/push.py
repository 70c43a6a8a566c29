"""`portique push [-q] [--tls-verify=false] NAME[:TAG]` with Docker's output."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from portique.cli.docker.commands.pull import add_registry_arguments

    parser.add_argument("name", metavar="NAME[:TAG]")
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    parser.add_argument("-a", "--all-tags", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="upload blobs in chunks of this many bytes (default: one request up to 64 MiB)",
    )
    add_registry_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.image import open_images
    from portique.cli.docker.commands.pull import ProgressPrinter, make_client
    from portique.errors import Unsupported
    from portique.image.push import push_image
    from portique.oci.reference import parse_reference

    if args.all_tags:
        raise Unsupported("push --all-tags is not supported")
    as_typed = parse_reference(args.name, default_tag=None)
    ref = parse_reference(args.name)
    out = sys.stdout
    printer = None if args.quiet else ProgressPrinter(out, out.isatty())
    if printer is not None:
        if as_typed.tag is None and as_typed.digest is None:
            out.write("Using default tag: latest\n")
        out.write(f"The push refers to repository [{ref.repository}]\n")
    images = open_images()
    try:
        result = push_image(
            images,
            str(ref),
            progress=printer,
            client=make_client(args),
            chunk_size=args.chunk_size,
        )
    finally:
        images.close()
    if printer is not None:
        out.write(f"{ref.tag}: digest: {result.digest} size: {result.size}\n")
    else:
        out.write(f"{ref.repository}@{result.digest}\n")
    return 0
