"""The network operations behind `network create|ls|inspect|rm|prune|connect|
disconnect`, in Docker's shapes, for every face.

The network layer (network/networks.py) owns bridges, addresses and rules;
this module adds what the engine owes on top: the pseudo networks `host` and
`none` Docker always lists, Docker's filters map, the API's JSON, the
container side of connect and disconnect (engine/network.py), and a missing
network named by the user as NoSuchObject("network", ref).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portique.engine import events
from portique.engine import filters as flt
from portique.errors import InvalidArgument, InvalidState, NoSuchObject, NotFound

if TYPE_CHECKING:
    from portique.engine.engine import Engine
    from portique.network.types import NetworkRecord

LIST_FILTERS = ("name", "id", "driver", "scope", "type", "label")
PREDEFINED = ("bridge", "host", "none")

__all__ = ["connect", "create", "disconnect", "inspect", "list_networks", "prune", "remove"]


def create(
    eng: Engine,
    name: str,
    *,
    driver: str = "bridge",
    subnet: str | None = None,
    gateway: str | None = None,
    internal: bool = False,
    ipv6: bool = False,
    labels: Mapping[str, str] | None = None,
    options: Mapping[str, str] | None = None,
) -> str:
    """`POST /networks/create`: the new network's id."""
    from portique.network.networks import check_name

    if ipv6:
        raise InvalidArgument("IPv6 networks are not supported")
    check_name(name)
    rec = eng.networks.create(
        name,
        subnet=subnet,
        gateway=gateway,
        internal=internal,
        driver=driver,
        labels=dict(labels or {}),
        options=dict(options or {}),
    )
    events.network(eng, rec.id, rec.name, "create", type=driver)
    return rec.id


def list_networks(eng: Engine, filters: flt.Filters | None = None) -> list[dict[str, Any]]:
    """`GET /networks`: every network Docker would list (bridge, host and none
    always), filtered, by name."""
    from portique.network.present import pseudo_networks

    wanted = flt.check(filters, LIST_FILTERS)
    for v in wanted.get("type", []):
        flt.one_of("type", v, ("custom", "builtin"))
    nets = eng.networks
    nets.ensure_default()
    every = nets.list() + pseudo_networks(nets)
    found = sorted((n for n in every if _matches(n, wanted)), key=lambda n: n.name)
    return [_summary(n) for n in found]


def _matches(net: NetworkRecord, wanted: Mapping[str, list[str]]) -> bool:
    tests: dict[str, Callable[[str], bool]] = {
        "name": lambda v: v in net.name,
        "id": lambda v: net.id.startswith(v),
        "driver": lambda v: net.driver == v,
        "scope": lambda v: v == "local",
        "type": lambda v: (v == "builtin") == net.is_default,
    }
    for key, values in wanted.items():
        if key == "label":
            if not flt.labels_match(net.labels, values):
                return False
        elif not any(tests[key](v) for v in values):
            return False
    return True


def _summary(net: NetworkRecord) -> dict[str, Any]:
    """A network as `GET /networks` lists it (no endpoints: that is inspect's)."""
    from portique.network.networks import OPT_BRIDGE_NAME

    ipam = [{"Subnet": net.subnet, "Gateway": net.gateway}] if net.subnet else []
    options = {OPT_BRIDGE_NAME: net.bridge, **net.options} if net.bridge else dict(net.options)
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {}, "Config": ipam},
        "Internal": net.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {},
        "Options": options,
        "Labels": dict(net.labels),
    }


def inspect(eng: Engine, ref: str) -> dict[str, Any]:
    """`GET /networks/{id}`: Docker's network object, with its endpoints."""
    from portique.network.present import pseudo_json, pseudo_networks

    nets = eng.networks
    if ref == "bridge":
        nets.ensure_default()
    try:
        return nets.inspect_json(ref)
    except NotFound:
        pass
    match = [
        p
        for p in pseudo_networks(nets)
        if ref == p.name or (len(ref) >= 3 and p.id.startswith(ref))
    ]
    if len(match) == 1:
        return pseudo_json(match[0])
    raise NoSuchObject("network", ref)


def _record(eng: Engine, ref: str) -> NetworkRecord:
    try:
        return eng.networks.inspect(ref)
    except NotFound:
        raise NoSuchObject("network", ref) from None


def remove(eng: Engine, ref: str) -> None:
    """`DELETE /networks/{id}`."""
    if ref in PREDEFINED:
        raise InvalidState(f"{ref} is a pre-defined network and cannot be removed")
    net = _record(eng, ref)
    eng.networks.remove(ref)
    events.network(eng, net.id, net.name, "destroy", type=net.driver)


PRUNE_FILTERS = ("until", "label", "label!")


def prune(eng: Engine, filters: flt.Filters | None = None) -> list[str]:
    """`POST /networks/prune`: the names of the user-defined networks no container
    uses, among those the filters keep (until, label, label!)."""
    from portique.engine.images import created_timestamp, parse_until
    from portique.engine.network import repair_leftovers
    from portique.errors import Conflict

    wanted = flt.check(filters, PRUNE_FILTERS)
    cutoffs = [parse_until(v) for v in wanted.get("until", [])]
    eng.recover()  # a start or removal cut short may still hold endpoints
    repair_leftovers(eng, every=0)  # endpoints of dead containers must not keep a network
    nets = eng.networks
    before = {n.name: n for n in nets.list()}
    if not wanted:
        removed = nets.prune()
    else:
        removed = []
        for net in before.values():
            if net.is_default or any(created_timestamp(net.created) >= c for c in cutoffs):
                continue
            if not flt.labels_match(net.labels, wanted.get("label", [])):
                continue
            if any(flt.label_matches(net.labels, w) for w in wanted.get("label!", [])):
                continue
            try:
                nets.remove(net.id)
            except (Conflict, NotFound):
                continue
            removed.append(net.name)
    for name in removed:
        if name in before:
            events.network(eng, before[name].id, name, "destroy", type=before[name].driver)
    return removed


def connect(
    eng: Engine, network: str, container: str, *, aliases: list[str], ip: str | None = None
) -> None:
    """`POST /networks/{id}/connect`: recorded in the container (a stopped one joins
    at its next start); a running one is wired now, the record undone if that fails."""
    from portique.engine import network as enet
    from portique.engine.state import has_process

    net = _record(eng, network)  # a clear error before touching the container
    row = enet.record_endpoint(eng, container, net.name, list(aliases), ip)
    if not has_process(row.status) or row.pid <= 0:
        return
    try:
        eng.networks.connect(
            net.id,
            row.id,
            Path(f"/proc/{row.pid}/ns/net"),
            container_name=row.name,
            aliases=aliases,
            ip=ip,
        )
    except BaseException:
        enet.forget_endpoint(eng, row.id, net.name)
        raise
    events.network(eng, net.id, net.name, "connect", container=row.id)
    _refresh_running(eng, row.id)


def disconnect(eng: Engine, network: str, container: str, *, force: bool = False) -> None:
    """`POST /networks/{id}/disconnect`; with `force`, a container that is gone
    still loses whatever endpoint has its id."""
    from portique.engine import db
    from portique.engine import network as enet

    net = _record(eng, network)
    try:
        cid = db.resolve_container(eng.db, container).id
    except NotFound:
        if not force:
            raise
        cid = container
    recorded = enet.forget_endpoint(eng, cid, net.name)
    live = any(ep.network_id == net.id for ep in eng.networks.endpoints(cid))
    if live or not recorded:
        # A container without a process only had the record: forgetting it is all.
        eng.networks.disconnect(net.id, cid)
    if live:
        events.network(eng, net.id, net.name, "disconnect", container=cid)
    _refresh_running(eng, cid)


def _refresh_running(eng: Engine, cid: str) -> None:
    """After `network connect`/`disconnect` of a running container: inspect's
    NetworkSettings lists its endpoints as they now are, and its resolv.conf is
    the embedded DNS while it is on a user-defined network (the host's
    resolvers, or --dns, once it is not), as Docker rewrites them."""
    from portique.engine import db
    from portique.engine import network as enet
    from portique.engine.state import has_process
    from portique.network.types import ContainerNetwork

    row = db.get_container(eng.db, cid)
    if row is None or not has_process(row.status):
        return
    host = row.config["HostConfig"]
    nets = eng.networks
    resolv = nets.resolv_conf(
        cid,
        dns=list(host.get("Dns") or ()),
        dns_search=list(host.get("DnsSearch") or ()),
        dns_options=list(host.get("DnsOptions") or ()),
    )
    cn = ContainerNetwork(tuple(nets.endpoints(cid)), tuple(nets.ports(cid)), resolv, ())
    enet.write_in_place(eng.paths(cid).dir / "resolv.conf", resolv)
    settings = enet.settings_of(cn)
    with db.transaction(eng.db):
        latest = db.get_container(eng.db, cid)
        if latest is not None:
            db.update_config(eng.db, cid, {**latest.config, "NetworkSettings": settings})
