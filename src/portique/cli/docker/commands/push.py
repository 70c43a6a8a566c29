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
    from portique.errors import InvalidArgument, NotFound
    from portique.image.push import push_image
    from portique.oci.reference import parse_reference

    as_typed = parse_reference(args.name, default_tag=None)
    out = sys.stdout
    printer = None if args.quiet else ProgressPrinter(out, out.isatty())
    images = eng.images
    if args.all_tags:
        if as_typed.tag is not None or as_typed.digest is not None:
            raise InvalidArgument("tag can't be used with --all-tags/-a")
        refs = sorted(
            {
                r
                for image in images.list()
                for r in (parse_reference(t) for t in image.repo_tags)
                if r.repository == as_typed.repository
            },
            key=str,
        )
        if not refs:
            raise NotFound(f"no tags of {as_typed.familiar_name()} to push")
    else:
        refs = [parse_reference(args.name)]
        if printer is not None and as_typed.tag is None and as_typed.digest is None:
            out.write("Using default tag: latest\n")
    if printer is not None:
        out.write(f"The push refers to repository [{as_typed.repository}]\n")
    client = make_client(args)
    for ref in refs:
        result = push_image(
            images, str(ref), progress=printer, client=client, chunk_size=args.chunk_size
        )
        from portique.engine import events

        events.pulled(eng, ref, images.resolve(str(ref)), "push")
        if printer is not None:
            out.write(f"{ref.tag}: digest: {result.digest} size: {result.size}\n")
        else:
            out.write(f"{ref.repository}@{result.digest}\n")
    return 0
