"""Netlink work through pyroute2: bridges, veth pairs, addresses, routes, netns.

Crash safety comes from how links are made:

- a veth pair is created in ONE RTM_NEWLINK request with its host end already
  enslaved to the bridge (IFLA_MASTER) and its peer already inside the
  container's netns under its final name (IFLA_NET_NS_FD): there is no moment
  where a half-made pair sits unattached in the host namespace;
- a veth pair dies with the container's network namespace, so an endpoint
  whose host end is gone belongs to a dead container;
- bridges carry an alias `portique:<table>` naming their engine root, so
  repair() removes only its own root's leftovers.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portique.network._pyroute import IPRoute, NetlinkError

SYSCTL_ROOT = Path("/proc/sys")


@dataclass(frozen=True, slots=True)
class HostLink:
    name: str
    index: int
    kind: str
    master: int | None
    alias: str | None


def _netlink_socket_in(netns: Path) -> int:
    """A NETLINK_ROUTE socket created inside `netns` (linux/net.py: only this thread
    enters the netns, for the socket() call); pyroute2's own IPRoute(netns=...) forks
    a helper process instead, 4x slower."""
    from portique.linux.net import socket_in_netns

    return socket_in_netns(netns, socket.AF_NETLINK, socket.SOCK_DGRAM, 0).detach()


@contextmanager
def _ipr(netns: Path | None = None) -> Iterator[Any]:
    ipr = IPRoute() if netns is None else IPRoute(fileno=_netlink_socket_in(netns))
    try:
        yield ipr
    finally:
        ipr.close()


def _index(ipr: Any, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def write_sysctl(key: str, value: str, root: Path = SYSCTL_ROOT) -> None:
    """Write /proc/sys/<key> ("net/ipv4/ip_forward": slashes, since interface names
    may contain dots) if it differs."""
    path = root / key
    if path.read_text().strip() != value:
        path.write_text(value + "\n")


def ensure_bridge(name: str, gateway: str, prefixlen: int, mtu: int, alias: str) -> None:
    """Create the bridge if absent (another process may race us: EEXIST is fine), give
    it the gateway address, bring it up, and allow DNAT of 127.0.0.1 onto it."""
    with _ipr() as ipr:
        idx = _index(ipr, name)
        if idx is None:
            try:
                # A fixed MAC: a bridge without one takes the lowest MAC of its
                # ports and changes it when that port leaves, which strands the
                # other containers' ARP entries for the gateway for seconds.
                mac = "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(gateway).packed)
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu, address=mac)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            idx = _index(ipr, name)
            assert idx is not None
            ipr.link("set", index=idx, ifalias=alias)
        try:
            ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        # Before it is up (and again for a bridge an older version made).
        ignore_router_advertisements(name)
        ipr.link("set", index=idx, state="up")
    # Published ports on 127.0.0.1 DNAT loopback-sourced packets onto the bridge;
    # the kernel drops those as martians unless route_localnet is set here.
    write_sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")


def ignore_router_advertisements(ifname: str, root: Path = SYSCTL_ROOT) -> None:
    """accept_ra=0 on `ifname` (nothing to do on a host without IPv6).

    Containers have CAP_NET_RAW: a router advertisement sent from one would
    otherwise give the host (or its neighbours on the bridge) addresses,
    routes, even a default route through the container (CVE-2020-13401).
    `root` is /proc/sys as seen from the network namespace it was opened in.
    """
    key = f"net/ipv6/conf/{ifname}/accept_ra"
    if (root / key).exists():
        write_sysctl(key, "0", root)


def _ignore_router_advertisements_in(netns: Path, ifname: str) -> None:
    """accept_ra=0 on `ifname` inside `netns`: /proc/sys/net shows the sysctls of
    the network namespace of the thread that opens the file, so this thread
    enters it for the open (as _netlink_socket_in does for its socket)."""
    from portique.linux.ns import CLONE_NEWNET, setns

    path = SYSCTL_ROOT / f"net/ipv6/conf/{ifname}/accept_ra"
    target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(target, CLONE_NEWNET)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return  # IPv6 is off in there
            finally:
                setns(home, CLONE_NEWNET)
        finally:
            os.close(home)
    finally:
        os.close(target)
    try:
        os.write(fd, b"0\n")
    finally:
        os.close(fd)


def delete_link(name: str) -> bool:
    """Delete a link by name; False if it was already gone."""
    with _ipr() as ipr:
        idx = _index(ipr, name)
        if idx is None:
            return False
        try:
            ipr.link("del", index=idx)
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                return False
            raise
    return True


def link_exists(name: str) -> bool:
    with _ipr() as ipr:
        return _index(ipr, name) is not None


def host_links() -> list[HostLink]:
    out = []
    with _ipr() as ipr:
        for link in ipr.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else ""
            out.append(
                HostLink(
                    name=link.get_attr("IFLA_IFNAME"),
                    index=link["index"],
                    kind=kind or "",
                    master=link.get_attr("IFLA_MASTER"),
                    alias=link.get_attr("IFLA_IFALIAS"),
                )
            )
    return out


def host_routes() -> list[tuple[ipaddress.IPv4Network, str]]:
    """IPv4 routes of the main table (not the default route) and the host's own
    addresses (local routes, 127.0.0.0/8 included), with their device name, to
    keep new subnets from shadowing the host's networks."""
    names = {link.index: link.name for link in host_links()}
    out = []
    with _ipr() as ipr:
        for r in ipr.get_routes(family=2):
            dst = r.get_attr("RTA_DST")
            if dst is None or r["dst_len"] == 0:
                continue
            # main table: any route; local table: only local addresses (type 2),
            # not the broadcast entries beside them.
            table = r.get_attr("RTA_TABLE") or r["table"]
            if not (table == 254 or (table == 255 and r["type"] == 2)):
                continue
            net = ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False)
            out.append((net, names.get(r.get_attr("RTA_OIF"), "")))
    return out


def foreign_routes(net: ipaddress.IPv4Network, bridge: str) -> list[str]:
    """Routes (main table) and host addresses overlapping `net` on any device but
    `bridge`, as "subnet on device" (by index, so links made meanwhile count too)."""
    out = []
    with _ipr() as ipr:
        own = _index(ipr, bridge)
        for r in ipr.get_routes(family=2):
            dst = r.get_attr("RTA_DST")
            table = r.get_attr("RTA_TABLE") or r["table"]
            if dst is None or r["dst_len"] == 0 or r.get_attr("RTA_OIF") == own:
                continue
            if not (table == 254 or (table == 255 and r["type"] == 2)):
                continue
            route = ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False)
            if route.overlaps(net):
                oif = r.get_attr("RTA_OIF")
                links = ipr.get_links(oif) if oif else []
                dev = links[0].get_attr("IFLA_IFNAME") if links else f"index {oif}"
                out.append(f"{route} on {dev}")
    return out


def add_veth(
    *,
    bridge: str,
    host_name: str,
    netns: Path,
    ifname: str,
    ip: str,
    prefixlen: int,
    gateway: str | None,
    mac: str,
    mtu: int,
) -> None:
    """Wire a container: veth pair (host end on `bridge`, peer `ifname` in `netns`),
    address, loopback, default route via `gateway` unless None (--internal)."""
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _ipr() as ipr:
            br = _index(ipr, bridge)
            if br is None:
                raise OSError(errno.ENODEV, f"bridge {bridge} does not exist")
            ipr.link(
                "add",
                ifname=host_name,
                kind="veth",
                master=br,
                mtu=mtu,
                peer={"ifname": ifname, "net_ns_fd": fd, "address": mac, "mtu": mtu},
            )
            idx = _index(ipr, host_name)
            assert idx is not None
            ipr.link("set", index=idx, state="up")
            # Hairpin: a container reaching its own published port through a
            # host address is DNATed back out of the port it came in on;
            # bridges refuse that by default. Through netlink, not sysfs:
            # /sys shows the namespace that mounted it, which a rootless
            # engine's network namespace is not (engine/rootlessnet.py).
            ipr.brport("set", index=idx, mode=1)
    finally:
        os.close(fd)
    with _ipr(netns) as ns:
        lo = _index(ns, "lo")
        if lo is not None:
            ns.link("set", index=lo, state="up")
        idx = _index(ns, ifname)
        assert idx is not None
        ns.addr("add", index=idx, address=ip, prefixlen=prefixlen)
        # Its neighbours have CAP_NET_RAW too: no RA of theirs configures it.
        _ignore_router_advertisements_in(netns, ifname)
        ns.link("set", index=idx, state="up")
        if gateway is not None:
            try:
                ns.route("add", dst="0.0.0.0/0", gateway=gateway, oif=idx)
            except NetlinkError as exc:
                # The first network joined keeps the default route, as in Docker.
                if exc.code != errno.EEXIST:
                    raise


def bring_up_loopback(netns: Path) -> None:
    """`--network none`: a netns whose only interface is lo, up."""
    with _ipr(netns) as ns:
        lo = _index(ns, "lo")
        if lo is not None:
            ns.link("set", index=lo, state="up")


def netns_ifnames(netns: Path) -> list[str]:
    with _ipr(netns) as ns:
        return [link.get_attr("IFLA_IFNAME") for link in ns.get_links()]


__all__ = [
    "HostLink",
    "add_veth",
    "bring_up_loopback",
    "delete_link",
    "ensure_bridge",
    "foreign_routes",
    "host_links",
    "host_routes",
    "ignore_router_advertisements",
    "link_exists",
    "netns_ifnames",
    "write_sysctl",
]
