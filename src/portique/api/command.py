"""`portique serve`: the Docker Engine API on a unix socket (api/server.py).

The verb of the CLI that the API face provides: cli/docker/main.py loads
this module by name for `serve` (FACE_VERBS), as it loads its own verbs.

portique serve [-H unix:///run/portique/docker.sock] [--group docker]
portique serve -H tcp://127.0.0.1:2375
portique serve -H tcp://0.0.0.0:2376 --tlsverify --tlscacert ca.pem --tlscert cert.pem --tlskey key.pem
"""

from __future__ import annotations

import argparse
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-H",
        "--host",
        action="append",
        default=[],
        help="where to listen: unix:///path (default: docker.sock in the engine's run root, "
        "unix:///run/portique/docker.sock as root) or tcp://ADDR:PORT",
    )
    parser.add_argument("-G", "--group", default="", help="group owning the unix socket")
    parser.add_argument("--tls", action="store_true", help="use TLS (implied by --tlsverify)")
    parser.add_argument("--tlsverify", action="store_true", help="require client certificates")
    parser.add_argument("--tlscacert", default="", help="CA certificates of the clients")
    parser.add_argument("--tlscert", default="", help="the server's certificate")
    parser.add_argument("--tlskey", default="", help="the server's key")
    parser.add_argument("--ready-fd", type=int, default=-1, help=argparse.SUPPRESS)


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.api import server
    from portique.api.router import Router
    from portique.errors import InvalidArgument

    tls = None
    if args.tls or args.tlsverify:
        if not (args.tlscert and args.tlskey) or (args.tlsverify and not args.tlscacert):
            raise InvalidArgument(
                "TLS needs --tlscert and --tlskey (and --tlscacert with --tlsverify)"
            )
        tls = server.TLSConfig(args.tlsverify, args.tlscacert, args.tlscert, args.tlskey)
    # A SIGTERM from now on stops the server cleanly: held until serve() has
    # its handlers (the socket is up before the imports are).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    router = Router.from_modules()
    listeners: list[server.Listener] = []
    try:
        # Each engine's own socket: /run/portique/docker.sock for root's,
        # $XDG_RUNTIME_DIR/portique/docker.sock for a rootless one.
        for host in args.host or [f"unix://{eng.runroot}/docker.sock"]:
            listeners.append(server.listen(host, group=args.group, tls=tls))  # noqa: PERF401
    except BaseException:
        for lst in listeners:
            lst.close()
        raise
    return server.serve(eng, listeners, router, ready=args.ready_fd)
