"""`portique build`: build an image from a Dockerfile (docker build's flags)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from portique.errors import InvalidArgument

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "context", metavar="PATH", help="build context directory, or - for a tar on stdin"
    )
    parser.add_argument("-t", "--tag", action="append", default=[], help="name:tag for the image")
    parser.add_argument("-f", "--file", help="Dockerfile (default PATH/Dockerfile)")
    parser.add_argument("--target", help="stage to build")
    parser.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-cache", action="store_true", help="do not use the cache")
    parser.add_argument("--pull", action="store_true", help="always pull base images")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    parser.add_argument("--iidfile", help="write the image ID to this file")
    parser.add_argument("--network", default="none", help="network for RUN steps: none or host")
    parser.add_argument("--platform", help="platform of base images (os/arch)")
    # Accepted for compatibility: portique keeps no intermediate containers.
    parser.add_argument("--rm", action="store_true", default=True, help=argparse.SUPPRESS)
    parser.add_argument("--force-rm", action="store_true", help=argparse.SUPPRESS)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        key, eq, value = v.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {flag} {v!r}: use KEY=VALUE")
        if not eq and flag == "--build-arg":
            # `--build-arg NAME` takes the value from the environment, as Docker does.
            if key not in os.environ:
                continue
            value = os.environ[key]
        out[key] = value
    return out


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.build.builder import Builder, BuildOptions
    from portique.oci.reference import parse_reference

    if args.network not in ("none", "host", "default"):
        raise InvalidArgument(f"invalid --network {args.network!r}: use none or host")
    tags = [str(parse_reference(t)) for t in args.tag]
    tmp: Path | None = None
    op = None
    try:
        if args.context == "-":
            # Under the engine root and in the journal: a killed build's context
            # is removed by the next command's recovery.
            from portique import journal

            tmp = eng.root / "tmp" / f"context-{os.urandom(8).hex()}"
            conn = journal.open_journal(eng.root)
            op = journal.Operation.begin(
                conn, "build-context", "", [{"type": "tree", "path": str(tmp)}]
            )
            tmp.mkdir(parents=True, mode=0o700)
            _extract_stdin(tmp)
            context = tmp
        else:
            context = Path(args.context)
        dockerfile = dockerfile_path(args.file, args.context, context)
        if dockerfile is not None and not dockerfile.is_file():
            # Docker's wording and status (1) for a Dockerfile it cannot find.
            sys.stderr.write(
                f"portique: unable to prepare context: cannot read Dockerfile {dockerfile}:"
                " no such file\n"
            )
            return 1
        opts = BuildOptions(
            context=context,
            dockerfile=dockerfile,
            tags=tags,
            target=args.target,
            build_args=_pairs(args.build_arg, "--build-arg"),
            no_cache=args.no_cache,
            pull=args.pull,
            labels=_pairs(args.label, "--label"),
            quiet=args.quiet,
            network="none" if args.network == "default" else args.network,
            platform=args.platform,
        )
        eng.recover(images=True)  # what a killed build (or pull) left goes first
        record = Builder(eng.images, eng.runtime_root).build(opts)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if op is not None:
            if tmp is None or not tmp.exists():
                op.end()
            op.conn.close()
    if args.iidfile:
        Path(args.iidfile).write_text(record.id)
    if args.quiet:
        print(record.id)
    return 0


def dockerfile_path(file: str | None, context_arg: str, context: Path) -> Path | None:
    """The Dockerfile `-f` names, as Docker resolves it: a relative path from
    the current directory (it may lie outside the context), except with a
    context from stdin, where it names a file of that context; None: the
    context's Dockerfile (or Containerfile), chosen by the builder."""
    if not file:
        return None
    path = Path(file)
    if path.is_absolute():
        return path
    return context / path if context_arg == "-" else Path.cwd() / path


def _extract_stdin(dest: Path) -> None:
    """A context tarball from stdin, unpacked with the hostile-layer rules."""
    from portique.image.unpack import unpack

    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        unpack(sys.stdin.buffer, fd)
    finally:
        os.close(fd)
