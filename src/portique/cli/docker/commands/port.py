"""`portique port CONTAINER [PRIVATE_PORT[/PROTO]]`: a container's published ports."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container")
    parser.add_argument("private_port", nargs="?")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import containers
    from portique.errors import InvalidArgument

    mappings = containers.published_ports(eng, args.container)
    if args.private_port is None:
        for m in mappings:
            print(m)
        return 0
    port_s, _, proto = args.private_port.partition("/")
    proto = proto or "tcp"
    if not port_s.isdigit() or proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid port {args.private_port!r}")
    found = [m for m in mappings if m.container_port == int(port_s) and m.proto == proto]
    if not found:
        sys.stderr.write(
            f"Error: No public port '{port_s}/{proto}' published for {args.container}\n"
        )
        return 1
    for m in found:
        print(f"{m.host_ip}:{m.host_port}")
    return 0
