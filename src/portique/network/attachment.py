"""Attachments: a container's endpoints on networks, and its published ports.

Functions of a `Networks` (network/networks.py), which exposes them as its
methods (`nets.connect(...)`, `nets.setup_container(...)`).

Order of every multi-step operation, so that a crash leaves what repair()
(network/repair.py) undoes: connect = lease (endpoint row "creating", one
BEGIN IMMEDIATE transaction) -> bridge -> veth pair -> row "active" ->
embedded DNS; publish = port rows -> firewall sync; removal runs the other way.

Environment: PORTIQUE_DNS_UPSTREAMS="ip[:port],..." replaces the host's
resolvers (from /etc/resolv.conf) as the embedded DNS servers' upstreams;
empty: none.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from portique import db as pdb
from portique.errors import Conflict, InvalidArgument, NotFound, shown
from portique.network import db as ndb
from portique.network import ipam
from portique.network.types import (
    DEFAULT_NETWORK,
    MAX_NAME,
    ContainerNetwork,
    Endpoint,
    NetworkRecord,
    NetworkRequest,
    PortMapping,
    PublishedPort,
)

if TYPE_CHECKING:
    from portique.network.networks import Networks


def check_alias(alias: str) -> None:
    """A network-scoped alias: a name for the DNS server and /etc/hosts, so one
    printable word (a newline would add a hosts line of the caller's choosing)."""
    if not alias or not alias.isprintable() or any(c.isspace() for c in alias):
        raise InvalidArgument(f"invalid network alias '{shown(alias)}': use one word, no blanks")
    if len(alias) > MAX_NAME:
        raise InvalidArgument(
            f"invalid network alias '{shown(alias)}': at most {MAX_NAME} characters"
        )


def host_veth_name(network_id: str, container_id: str) -> str:
    # 15 characters max for a Linux interface name: "pq" + 11 hex.
    return "pq" + hashlib.sha256(f"{network_id}/{container_id}".encode()).hexdigest()[:11]


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), "53"
    ipam.parse_address(host, "DNS upstream")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"invalid DNS upstream {text!r}")
    return host, int(port)


def endpoints(nets: Networks, container_id: str) -> list[Endpoint]:
    return [
        ep
        for ep, state in ndb.endpoints_where(nets.conn, "e.container_id = ?", (container_id,))
        if state == "active"
    ]


def network_endpoints(nets: Networks, name_or_id: str) -> list[Endpoint]:
    net = nets.inspect(name_or_id)
    return [
        ep
        for ep, state in ndb.endpoints_where(nets.conn, "e.network_id = ?", (net.id,))
        if state == "active"
    ]


def connect(
    nets: Networks,
    name_or_id: str,
    container_id: str,
    netns_path: Path,
    *,
    container_name: str,
    aliases: Sequence[str] = (),
    ip: str | None = None,
    mac: str | None = None,
) -> Endpoint:
    from portique.network import bridge, dnsserver

    net = nets.ensure_default() if name_or_id == DEFAULT_NETWORK else nets.inspect(name_or_id)
    if aliases and not net.resolves_names:
        raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")
    for alias in aliases:
        check_alias(alias)
    subnet = ipaddress.IPv4Network(net.subnet)
    want_ip = None
    if ip is not None:
        if net.is_default:
            raise InvalidArgument(
                "user specified IP address is supported only on user-defined networks"
            )
        want_ip = ipam.parse_address(ip, "IP address")
        ipam.check_in_subnet(subnet, want_ip, "IP address")
    want_mac = ipam.parse_mac(mac) if mac else None
    name = container_name.lstrip("/")
    with pdb.transaction(nets.conn) as conn:
        if conn.execute("SELECT 1 FROM networks WHERE id = ?", (net.id,)).fetchone() is None:
            raise NotFound(f"network {name_or_id} not found")
        if conn.execute(
            "SELECT 1 FROM endpoints WHERE network_id = ? AND container_id = ?",
            (net.id, container_id),
        ).fetchone():
            raise Conflict(f"container {name} is already attached to network {net.name}")
        used = {
            ipaddress.IPv4Address(r[0])
            for r in conn.execute("SELECT ip FROM endpoints WHERE network_id = ?", (net.id,))
        }
        gw = ipaddress.IPv4Address(net.gateway)
        if want_ip is not None:
            if want_ip in used or want_ip == gw:
                raise Conflict(f"address {want_ip} is already in use on network {net.name}")
            addr = want_ip
        else:
            addr = ipam.next_free_address(subnet, gw, used)
        taken_if = {
            r[0]
            for r in conn.execute(
                "SELECT ifname FROM endpoints WHERE container_id = ?", (container_id,)
            )
        }
        ifname = next(f"eth{i}" for i in range(len(taken_if) + 1) if f"eth{i}" not in taken_if)
        ep = Endpoint(
            network_id=net.id,
            network=net.name,
            container_id=container_id,
            container_name=name,
            ip=str(addr),
            prefixlen=subnet.prefixlen,
            gateway=None if net.internal else net.gateway,
            mac=want_mac or ipam.mac_for_address(addr),
            host_veth=host_veth_name(net.id, container_id),
            ifname=ifname,
            aliases=tuple(dict.fromkeys(a for a in aliases if a)),
            netns=str(netns_path),
        )
        ndb.insert_endpoint(conn, ep, "creating", time.time())
    try:
        created = not bridge.link_exists(net.bridge)
        bridge.ensure_bridge(net.bridge, net.gateway, subnet.prefixlen, net.mtu, nets.bridge_alias)
        if created:
            # Another engine root may have routed this subnet since `network create`
            # (roots do not share a database): refuse rather than misroute.
            clash = bridge.foreign_routes(subnet, net.bridge)
            if clash:
                bridge.delete_link(net.bridge)
                raise Conflict(
                    f"subnet {subnet} of network {net.name} overlaps with host route {clash[0]}"
                )
        if not net.internal:
            bridge.write_sysctl("net/ipv4/ip_forward", "1")
        bridge.add_veth(
            bridge=net.bridge,
            host_name=ep.host_veth,
            netns=netns_path,
            ifname=ep.ifname,
            ip=ep.ip,
            prefixlen=ep.prefixlen,
            gateway=ep.gateway,
            mac=ep.mac,
            mtu=net.mtu,
        )
        with pdb.transaction(nets.conn) as conn:
            conn.execute(
                "UPDATE endpoints SET state = 'active' WHERE network_id = ? AND container_id = ?",
                (net.id, container_id),
            )
        if created:
            nets.sync_firewall()
        if net.resolves_names:
            dnsserver.ensure_running(
                nets.run_dir, nets.root / pdb.DB_NAME, net.id, net.gateway,
                upstreams(nets, net), nets.dns_port,
            )  # fmt: skip
    except BaseException as exc:
        try:
            drop_endpoint(nets, ep)
        except Exception as cleanup:  # keep the cause, note the cleanup failure
            exc.add_note(f"cleanup failed: {cleanup}")
        raise
    return ep


def upstreams(nets: Networks, net: NetworkRecord) -> list[tuple[str, int]]:
    """Where the embedded DNS relays foreign names: nowhere for --internal networks
    (as Docker since 26: no DNS tunnel out of a sealed network), else the host's."""
    from portique.network import dnsserver

    if net.internal:
        return []
    if nets.dns_upstreams is not None:
        return list(nets.dns_upstreams)
    env = os.environ.get("PORTIQUE_DNS_UPSTREAMS")
    if env is not None:
        # "host:port,host:port"; empty: relay nowhere (air-gapped hosts, tests).
        return [_host_port(item) for item in env.split(",") if item.strip()]
    return dnsserver.host_resolvers()


def drop_endpoint(nets: Networks, ep: Endpoint) -> bool:
    """Undo one endpoint: veth (its peer goes with it), ports to its address, lease.
    Returns True if ports were removed (the caller re-syncs the firewall)."""
    # After the container's exit the kernel has usually destroyed the pair with
    # its namespace already: then skip pyroute2's import (~70 ms of CPU in the
    # exiting monitor, competing with the next container's start).
    # (/sys shows the host's namespace: a rootless engine's is another one.)
    from portique.linux.ns import in_user_namespace

    if in_user_namespace() or os.path.lexists(f"/sys/class/net/{ep.host_veth}"):
        from portique.network import bridge

        bridge.delete_link(ep.host_veth)
    with pdb.transaction(nets.conn) as conn:
        cur = conn.execute(
            "DELETE FROM ports WHERE container_id = ? AND container_ip = ?",
            (ep.container_id, ep.ip),
        )
        conn.execute(
            "DELETE FROM endpoints WHERE network_id = ? AND container_id = ?",
            (ep.network_id, ep.container_id),
        )
        left = conn.execute(
            "SELECT COUNT(*) FROM endpoints WHERE network_id = ?", (ep.network_id,)
        ).fetchone()[0]
    if not left:
        from portique.network import dnsserver

        dnsserver.stop(nets.run_dir, ep.network_id)
    return cur.rowcount > 0


def disconnect(nets: Networks, name_or_id: str, container_id: str) -> None:
    net = nets.inspect(name_or_id)
    found = ndb.endpoints_where(
        nets.conn, "e.network_id = ? AND e.container_id = ?", (net.id, container_id)
    )
    if not found:
        raise NotFound(f"container {container_id[:12]} is not connected to network {net.name}")
    if drop_endpoint(nets, found[0][0]):
        nets.sync_firewall()


def release_container(nets: Networks, container_id: str) -> None:
    """Remove every endpoint, port and lease of a container; safe to repeat."""
    resync = False
    for ep, _state in ndb.endpoints_where(nets.conn, "e.container_id = ?", (container_id,)):
        resync |= drop_endpoint(nets, ep)
    with pdb.transaction(nets.conn) as conn:
        resync |= (
            conn.execute("DELETE FROM ports WHERE container_id = ?", (container_id,)).rowcount > 0
        )
    if resync:
        nets.sync_firewall()


def setup_container(
    nets: Networks,
    container_id: str,
    netns_path: Path,
    *,
    container_name: str,
    networks: Sequence[NetworkRequest] = (NetworkRequest(),),
    ports: Iterable[PortMapping] = (),
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
) -> ContainerNetwork:
    """Everything `run`/`start` needs in one call: connect to each network in order
    (the first one gets eth0 and the default route), publish `ports`, and return the
    resolv.conf and hosts lines to write. All or nothing: on any failure whatever
    was made for the container is released before the error propagates."""
    try:
        eps = tuple(
            connect(
                nets,
                r.network,
                container_id,
                netns_path,
                container_name=container_name,
                aliases=r.aliases,
                ip=r.ip,
                mac=r.mac,
            )
            for r in networks
        )
        published = tuple(publish(nets, container_id, list(ports)))
        return ContainerNetwork(
            endpoints=eps,
            ports=published,
            resolv_conf=nets.resolv_conf(
                container_id, dns=dns, dns_search=dns_search, dns_options=dns_options
            ),
            hosts=tuple((ip, tuple(n)) for ip, n in nets.hosts_entries(container_id)),
        )
    except BaseException as exc:
        try:
            release_container(nets, container_id)
        except Exception as cleanup:
            exc.add_note(f"cleanup failed: {cleanup}")
        raise


def publish(nets: Networks, container_id: str, ports: Iterable[PortMapping]) -> list[PortMapping]:
    """Install DNAT for `ports` to the container's first non-internal endpoint."""
    from portique.network.ports import choose_host_ports

    wanted = list(ports)
    if not wanted:
        return []
    eps = [ep for ep in endpoints(nets, container_id) if ep.gateway is not None]
    if not eps:
        raise InvalidArgument(
            f"container {container_id[:12]} has no non-internal network to publish ports on"
        )
    target = eps[0]
    with pdb.transaction(nets.conn) as conn:
        taken = [p.mapping for p in ndb.published_ports(conn)]
        chosen = choose_host_ports(wanted, taken)
        for m in chosen:
            ndb.insert_port(conn, PublishedPort(container_id, target.ip, m))
    try:
        nets.sync_firewall()
    except BaseException:
        with pdb.transaction(nets.conn) as conn:
            for m in chosen:
                conn.execute(
                    "DELETE FROM ports WHERE container_id = ? AND host_ip = ? AND host_port = ?"
                    " AND proto = ?",
                    (container_id, m.host_ip, m.host_port, str(m.proto)),
                )
        raise
    return chosen


def ports(nets: Networks, container_id: str) -> list[PortMapping]:
    return [p.mapping for p in ndb.published_ports(nets.conn, container_id)]


__all__ = [
    "check_alias",
    "connect",
    "disconnect",
    "drop_endpoint",
    "endpoints",
    "host_veth_name",
    "network_endpoints",
    "ports",
    "publish",
    "release_container",
    "setup_container",
    "upstreams",
]
