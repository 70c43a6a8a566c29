"""`portique network create|ls|inspect|rm|prune|connect|disconnect`.

Parsing and printing only; the work is portique.network.networks.Networks.
`connect`/`disconnect` look the container up in the engine's table
(portique.engine.db) and wire its running process's network namespace.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.engine.engine import Engine
    from portique.network.types import NetworkRecord

NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="network_command", metavar="COMMAND")

    p = sub.add_parser("create", help="create a network")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", action="append", default=[])
    p.add_argument("--gateway", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("--ipv6", action="store_true")
    p.add_argument("--attachable", action="store_true")  # accepted, meaningless without swarm
    p.add_argument("name")

    for verb in ("ls", "list"):
        p = sub.add_parser(verb, help="list networks")
        p.add_argument("-q", "--quiet", action="store_true")
        p.add_argument("-f", "--filter", action="append", default=[])
        p.add_argument("--format")
        p.add_argument("--no-trunc", action="store_true")

    p = sub.add_parser("inspect", help="show networks in detail")
    p.add_argument("-f", "--format")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("networks", nargs="+")

    for verb in ("rm", "remove"):
        p = sub.add_parser(verb, help="remove networks")
        p.add_argument("-f", "--force", action="store_true")
        p.add_argument("networks", nargs="+")

    p = sub.add_parser("prune", help="remove unused networks")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])

    p = sub.add_parser("connect", help="connect a container to a network")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--ip")
    p.add_argument("network")
    p.add_argument("container")

    p = sub.add_parser("disconnect", help="disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("network")
    p.add_argument("container")


def _kv(items: list[str], what: str) -> dict[str, str]:
    from portique.errors import InvalidArgument

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {what} {item!r}")
        out[key] = value if sep else ""
    return out


def run(eng: Engine, args: argparse.Namespace) -> int:
    cmd = args.network_command
    handlers: dict[str, Callable[[Engine, argparse.Namespace], int]] = {
        "create": _create,
        "ls": _ls,
        "list": _ls,
        "inspect": _inspect,
        "rm": _rm,
        "remove": _rm,
        "prune": _prune,
        "connect": _connect,
        "disconnect": _disconnect,
    }
    if cmd is None:
        sys.stdout.write(
            "usage: portique network COMMAND\n\nCommands: connect, create, disconnect,"
            " inspect, ls, prune, rm\n"
        )
        return 0
    return handlers[cmd](eng, args)


def _create(eng: Engine, args: argparse.Namespace) -> int:
    from portique.errors import InvalidArgument

    if args.ipv6:
        raise InvalidArgument("IPv6 networks are not supported")
    if len(args.subnet) > 1 or len(args.gateway) > 1:
        raise InvalidArgument("only one --subnet and one --gateway per network are supported")
    from portique.network.networks import check_name

    try:
        check_name(args.name)
    except InvalidArgument as exc:
        sys.stderr.write(f"portique: {exc}\n")
        return 1  # Docker's status for a refused `network create`
    rec = eng.networks.create(
        args.name,
        subnet=args.subnet[0] if args.subnet else None,
        gateway=args.gateway[0] if args.gateway else None,
        internal=args.internal,
        driver=args.driver,
        labels=_kv(args.label, "label"),
        options=_kv(args.opt, "option"),
    )
    print(rec.id)
    return 0


def _matches(net: NetworkRecord, filters: list[str]) -> bool:
    from portique.errors import InvalidArgument

    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {f}")
        if key == "name":
            ok = value in net.name
        elif key == "id":
            ok = net.id.startswith(value)
        elif key == "driver":
            ok = net.driver == value
        elif key == "scope":
            ok = value == "local"
        elif key == "type":
            if value not in ("custom", "builtin"):
                raise InvalidArgument(f"invalid filter 'type={value}'")
            ok = (value == "builtin") == net.is_default
        elif key == "label":
            k, has, v = value.partition("=")
            ok = k in net.labels and (not has or net.labels[k] == v)
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
        if not ok:
            return False
    return True


def _ls(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.format import format_rows
    from portique.network.present import pseudo_networks

    nets = eng.networks
    nets.ensure_default()  # Docker always lists "bridge", "host" and "none"
    every = nets.list() + pseudo_networks(nets)
    found = sorted((n for n in every if _matches(n, args.filter)), key=lambda n: n.name)
    if args.quiet:
        for n in found:
            print(n.id if args.no_trunc else n.id[:12])
        return 0
    rows = [
        {
            "ID": n.id if args.no_trunc else n.id[:12],
            "Name": n.name,
            "Driver": n.driver,
            "Scope": "local",
            "IPv6": "false",
            "Internal": str(n.internal).lower(),
            "Labels": ",".join(f"{k}={v}" for k, v in n.labels.items()),
            "CreatedAt": n.created,
        }
        for n in found
    ]
    sys.stdout.write(
        format_rows(
            args.format,
            rows,
            default=NETWORK_TABLE,
            headers=NETWORK_HEADERS,
            context="*network.networkContext",
            labels=[n.labels for n in found],
        )
    )
    return 0


def _inspect(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.image import print_inspect
    from portique.errors import NotFound
    from portique.network.present import pseudo_json, pseudo_networks

    nets = eng.networks
    pseudo = pseudo_networks(nets)
    found: list[dict[str, Any]] = []
    missing = []
    for ref in args.networks:
        try:
            if ref == "bridge":
                nets.ensure_default()
            found.append(nets.inspect_json(ref))
        except NotFound:
            match = [p for p in pseudo if ref == p.name or (len(ref) >= 3 and p.id.startswith(ref))]
            if len(match) == 1:
                found.append(pseudo_json(match[0]))
            else:
                missing.append(ref)
    status = print_inspect(found, args.format, "network.Inspect")
    for ref in missing:
        sys.stderr.write(f"portique: network {ref} not found\n")
    return 1 if missing else status


def _rm(eng: Engine, args: argparse.Namespace) -> int:
    from portique.errors import PortiqueError

    nets = eng.networks
    status = 0
    for ref in args.networks:
        try:
            if ref in ("bridge", "host", "none"):
                raise PortiqueError(f"{ref} is a pre-defined network and cannot be removed")
            nets.remove(ref)
            print(ref)
        except PortiqueError as exc:
            if args.force and exc.http_status == 404:
                continue
            sys.stderr.write(f"portique: {exc}\n")
            status = exc.exit_code
    return status


def _prune(eng: Engine, args: argparse.Namespace) -> int:
    if not args.force and sys.stdin.isatty():
        sys.stdout.write(
            "WARNING! This will remove all custom networks not used by at least one container.\n"
            "Are you sure you want to continue? [y/N] "
        )
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from portique.engine.network import repair_leftovers

    eng.recover()  # a start or removal cut short may still hold endpoints
    repair_leftovers(eng, every=0)  # endpoints of dead containers must not keep a network
    removed = eng.networks.prune()
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
    return 0


def _connect(eng: Engine, args: argparse.Namespace) -> int:
    """Recorded in the container (a stopped one joins at its next start); a running
    one is wired now, and the record undone if that fails."""
    from pathlib import Path

    from portique.engine import network as enet
    from portique.engine.state import has_process

    nets = eng.networks
    net = nets.inspect(args.network)  # a clear error before touching the container
    row = enet.record_endpoint(eng, args.container, net.name, list(args.alias), args.ip)
    if not has_process(row.status) or row.pid <= 0:
        return 0
    try:
        nets.connect(
            net.id,
            row.id,
            Path(f"/proc/{row.pid}/ns/net"),
            container_name=row.name,
            aliases=args.alias,
            ip=args.ip,
        )
    except BaseException:
        enet.forget_endpoint(eng, row.id, net.name)
        raise
    return 0


def _disconnect(eng: Engine, args: argparse.Namespace) -> int:
    from portique.errors import NotFound

    nets = eng.networks
    net = nets.inspect(args.network)
    try:
        from portique.engine import db as edb

        cid = edb.resolve_container(eng.db, args.container).id
    except NotFound:
        if not args.force:
            raise
        # --force: the container is gone; drop whatever endpoint has that id.
        cid = args.container
    from portique.engine import network as enet

    enet.forget_endpoint(eng, cid, net.name)
    nets.disconnect(net.id, cid)
    return 0
