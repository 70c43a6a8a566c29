"""`portique build`: build an image from a Dockerfile (docker build's flags)."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    parser.add_argument(
        "--pull",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="always pull base images (--pull=false: use local ones)",
    )
    parser.add_argument(
        "--add-host",
        action="append",
        default=[],
        metavar="HOST:IP",
        help="add a host to RUN steps' /etc/hosts",
    )
    parser.add_argument(
        "--cache-from",
        action="append",
        default=[],
        metavar="IMAGE",
        help="images to consider as cache sources",
    )
    parser.add_argument("--shm-size", default=None, help="size of RUN steps' /dev/shm")
    parser.add_argument(
        "--ulimit", action="append", default=[], help="ulimit options for RUN steps"
    )
    parser.add_argument("-m", "--memory", default=None, help="memory limit of RUN steps")
    parser.add_argument(
        "--memory-swap", default=None, help="memory + swap of RUN steps (-1: unlimited swap)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    parser.add_argument("--iidfile", help="write the image ID to this file")
    parser.add_argument("--network", default="none", help="network for RUN steps: none or host")
    parser.add_argument("--platform", help="platform of base images (os/arch)")
    # Accepted for compatibility: portique keeps no intermediate containers.
    parser.add_argument("--rm", action="store_true", default=True, help=argparse.SUPPRESS)
    parser.add_argument("--force-rm", action="store_true", help=argparse.SUPPRESS)


def _bool(value: str) -> bool:
    from portique.cli.docker.commands.pull import parse_bool

    return parse_bool(value)


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    """BuildOptions' add_hosts, rlimits, shm_size, memory and memory_swap."""
    if not (args.memory or args.memory_swap or args.ulimit or args.add_host or args.shm_size):
        # None given: what the parsers below return for that, without their imports.
        return {"add_hosts": [], "rlimits": [], "shm_size": 0, "memory": 0, "memory_swap": 0}
    from portique.engine import network
    from portique.engine import options as opt

    memory = opt.parse_memory(args.memory)
    rlimits = []
    for spec in args.ulimit:
        u = opt.parse_ulimit(spec)
        rlimits.append({"type": opt.ULIMIT_NAMES[u.name], "soft": u.soft, "hard": u.hard})
    return {
        "add_hosts": [network.parse_extra_host(h) for h in args.add_host],
        "rlimits": rlimits,
        "shm_size": opt.parse_size(args.shm_size, "--shm-size") if args.shm_size else 0,
        "memory": memory,
        "memory_swap": opt.parse_memory_swap(args.memory_swap, memory),
    }


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
    from portique.build.builder import BuildOptions
    from portique.engine import images
    from portique.oci.reference import parse_reference

    if args.network not in ("none", "host", "default"):
        raise InvalidArgument(f"invalid --network {args.network!r}: use none or host")
    tags = [str(parse_reference(t)) for t in args.tag]
    limits = _limits(args)
    dockerfile_text = None
    if args.file == "-":
        # `-f -`: the Dockerfile on stdin, the context from PATH.
        if args.context == "-":
            raise InvalidArgument(
                "invalid argument: can't use stdin for both build context and dockerfile"
            )
        from portique.build.dockerfile import MAX_DOCKERFILE

        raw = sys.stdin.buffer.read(MAX_DOCKERFILE + 1)
        if len(raw) > MAX_DOCKERFILE:
            raise InvalidArgument(f"the Dockerfile on stdin is larger than {MAX_DOCKERFILE} bytes")
        dockerfile_text = raw.decode("utf-8", "replace")
    with ExitStack() as stack:
        if args.context == "-":
            context = stack.enter_context(images.build_context(eng, sys.stdin.buffer))
        else:
            context = Path(args.context)
        dockerfile = (
            None
            if dockerfile_text is not None
            else dockerfile_path(args.file, args.context, context)
        )
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
            dockerfile_text=dockerfile_text,
            cache_from=list(args.cache_from),
            **limits,
        )
        record = images.build(eng, opts)
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
