"""`portique attach CONTAINER`: stream a running container's stdio."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-stdin", action="store_true", help="do not attach STDIN")
    parser.add_argument("--sig-proxy", default="true", help="proxy received signals to the process")
    parser.add_argument("--detach-keys", default="ctrl-p,ctrl-q", help="key sequence for detaching")
    parser.add_argument("container")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import attach, containers
    from portique.engine.state import Event

    row = containers.get_for(eng, args.container, Event.ATTACH)
    config = row.config["Config"]
    opts = attach.AttachOptions(
        stdin=not args.no_stdin and bool(config.get("OpenStdin")),
        tty=bool(config.get("Tty")),
        detach_keys=attach.parse_detach_keys(args.detach_keys),
        sig_proxy=args.sig_proxy.lower() not in ("false", "0") and not config.get("Tty"),
    )
    from portique.engine import events

    events.container(eng, row, "attach")
    code = attach.attach(eng.paths(row.id), opts)
    return 0 if code == attach.DETACHED else code
