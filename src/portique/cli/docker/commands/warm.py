"""`portique warm start|stop|status`: the engine root's warm fork-server (portique/warm).

Hidden (not in `--help`): an operator's and `portique serve`'s verb. `start`
returns once the server listens on <runroot>/warm.sock (at once when one
runs already); from then on every `portique` command of this run root is
run by a fork of it. `stop` closes the socket (new commands run in-process)
and waits for the commands in flight; containers keep running. `status`
prints the server's pid, or exits 1.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from portique.db import DB_NAME
from portique.errors import PortiqueError

if TYPE_CHECKING:
    from portique.engine.engine import Engine

# Imported by the server before it forks anything: the verbs people time and
# what they load (every worker and monitor shares these pages).
PRELOAD = (  # the CLI's own; the container start path is warm/preload.py's
    "portique.cli.docker.argparser",
    "portique.cli.docker.each",
    "portique.cli.docker.commands.run",
    "portique.cli.docker.commands.create",
    "portique.cli.docker.commands.exec",
    "portique.cli.docker.commands.ps",
    "portique.cli.docker.commands.rm",
    "portique.cli.docker.commands.start",
    "portique.cli.docker.commands.stop",
    "portique.cli.docker.commands.kill",
    "portique.cli.docker.commands.inspect",
    "portique.cli.docker.commands.logs",
    "portique.cli.docker.commands.wait",
    "portique.cli.docker.commands.attach",
    "portique.cli.docker.commands.image",
)
# Imported after the monitors' zygote is forked: commands that start no
# container (pull's registry client, build's Dockerfile and cache), so a
# monitor's PSS does not grow with them.
PRELOAD_WORKERS = (
    "portique.cli.docker.commands.pull",
    "portique.cli.docker.commands.build",
    "portique.engine.images",
    "portique.engine.registry",
    "portique.image.credentials",
    "portique.image.registry.client",
    "portique.image.pull",
    "portique.image.unpack",
    "portique.build.builder",
    "portique.build.copy",
    "encodings.idna",  # what socket uses to encode a host name
    "isal.igzip",  # gzip layers' decompressor (image/compression.py)
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument(
        "--idle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="start: exit after this long without a command (default: never)",
    )


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.warm import server

    if args.action == "status":
        pid = server.status(eng.runroot)
        if pid is None:
            print("not running")
            return 1
        print(f"running (pid {pid}, {server.socket_path(eng.runroot)})")
        return 0
    if args.action == "stop":
        if not server.stop(eng.runroot):
            raise PortiqueError("the warm server is still finishing commands")
        return 0
    from portique.cli.docker.main import warm_handler
    from portique.linux.selfexe import ensure_protected

    try:
        # The server and every process it forks (workers, monitors, containers'
        # first processes) run from a file no container can rewrite.
        ensure_protected()
    except OSError as exc:
        raise PortiqueError(exc.strerror or str(exc)) from None
    try:
        server.start(
            eng.runroot,
            warm_handler,
            PRELOAD,
            args.idle,
            eng.root / DB_NAME,
            workers_only=PRELOAD_WORKERS,
        )
    except server.ServerError as exc:
        raise PortiqueError(str(exc)) from None
    return 0
