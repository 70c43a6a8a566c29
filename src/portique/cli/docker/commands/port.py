"""`portique port CONTAINER [PRIVATE_PORT[/PROTO]]`: a container's published ports."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container")
    parser.add_argument("private_port", nargs="?")


def run(args: argparse.Namespace) -> int:
    from portique.db import default_root
    from portique.errors import InvalidArgument, Unsupported
    from portique.network.networks import Networks

    try:
        from portique.engine import db as edb
    except ImportError:
        raise Unsupported("port needs the container engine (portique.engine)") from None
    conn = edb.open_db(default_root())
    try:
        row = edb.resolve_container(conn, args.container)
    finally:
        conn.close()
    mappings = Networks(default_root()).ports(row.id)
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
