"""`portique container COMMAND`: the management group; each verb is its own module."""

from __future__ import annotations

import argparse
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine

# sub-command -> (module, aliases)
SUBCOMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ls": ("ps", ("ps", "list")),
    "create": ("create", ()),
    "run": ("run", ()),
    "start": ("start", ()),
    "stop": ("stop", ()),
    "restart": ("restart", ()),
    "kill": ("kill", ()),
    "pause": ("pause", ()),
    "unpause": ("unpause", ()),
    "rm": ("rm", ("remove",)),
    "wait": ("wait", ()),
    "logs": ("logs", ()),
    "attach": ("attach", ()),
    "exec": ("exec", ()),
    "inspect": ("inspect", ()),
    "top": ("top", ()),
    "stats": ("stats", ()),
    "cp": ("cp", ()),
    "export": ("export", ()),
    "rename": ("rename", ()),
    "port": ("port", ()),
    "commit": ("commit", ()),
    "diff": ("diff", ()),
    "update": ("update", ()),
    "prune": ("container", ()),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="container_command", metavar="COMMAND")
    sub.required = True
    for name, (module, aliases) in SUBCOMMANDS.items():
        # The verb's module parses the rest when run: a NUL prefix makes every word
        # (flags too) a positional here.
        p = sub.add_parser(name, aliases=list(aliases), add_help=False, prefix_chars="\0")
        p.add_argument("rest", nargs="*")
        p.set_defaults(container_module=module, container_parser=type(parser))


def run(eng: Engine, args: argparse.Namespace) -> int:
    parser = args.container_parser(prog=f"portique container {args.container_command}")
    if args.container_command == "prune":
        _prune_arguments(parser)
        return _prune(eng, parser.parse_args(args.rest))
    module = importlib.import_module(f"portique.cli.docker.commands.{args.container_module}")
    module.add_arguments(parser)
    ns = parser.parse_args(args.rest)
    if args.container_command == "inspect":
        ns.type = "container"
    return int(module.run(eng, ns))


def _prune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    parser.add_argument("--filter", action="append", default=[], help="filters (not supported yet)")


def _prune(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import containers

    if not args.force and not confirm("WARNING! This will remove all stopped containers."):
        return 0
    removed = containers.prune(eng)
    if removed:
        print("Deleted Containers:")
        for cid in removed:
            print(cid)
        print()
    print("Total reclaimed space: 0B")
    return 0


def confirm(warning: str) -> bool:
    import sys

    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")
