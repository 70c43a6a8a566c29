"""What the kernel says about a network namespace and the NAT rules aimed at it.

`view(netns)`: interfaces, addresses and routes, asked over a netlink socket
born inside the namespace (network/bridge.py's trick). `dnat_rules(addresses)`:
every nftables rule on the host that rewrites a destination to one of
`addresses` (published ports), whoever wrote it: portique's own tables,
Docker's (through iptables-nft), anyone's. Both read the kernel, not
portique's database.
"""

from __future__ import annotations

import re
import socket
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Interface", "NatRule", "NetView", "Route", "dnat_rules", "view"]


@dataclass(frozen=True, slots=True)
class Interface:
    index: int
    name: str
    kind: str  # "veth", "loopback", "bridge", ... ("" when the kernel does not say)
    state: str  # operational state: UP, DOWN, UNKNOWN (loopback)
    mac: str
    mtu: int
    addresses: list[str] = field(default_factory=list)  # "172.17.0.2/16"


@dataclass(frozen=True, slots=True)
class Route:
    destination: str  # "default" or "172.17.0.0/16"
    gateway: str
    device: str
    family: str  # "inet" or "inet6"


@dataclass(frozen=True, slots=True)
class NetView:
    interfaces: list[Interface]
    routes: list[Route]


@dataclass(frozen=True, slots=True)
class NatRule:
    table: str  # "ip portique_nat"
    chain: str
    rule: str  # as `nft list ruleset` prints it
    protocol: str
    host_ip: str  # "" when any local address
    host_port: str
    container_ip: str
    container_port: str


def view(netns: Path) -> NetView:
    from portique.network.bridge import _ipr

    with _ipr(netns) as ipr:
        links = ipr.get_links()
        addrs = ipr.get_addr()
        routes = [
            *ipr.get_routes(family=socket.AF_INET, table=254),
            *ipr.get_routes(family=socket.AF_INET6, table=254),
        ]
    names: dict[int, str] = {}
    interfaces = []
    for link in links:
        index = int(link["index"])
        name = str(link.get_attr("IFLA_IFNAME"))
        names[index] = name
        info = link.get_attr("IFLA_LINKINFO")
        kind = str(info.get_attr("IFLA_INFO_KIND") or "") if info else ""
        if not kind and name == "lo":
            kind = "loopback"
        own = [
            f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in addrs if a["index"] == index
        ]
        interfaces.append(
            Interface(
                index,
                name,
                kind,
                str(link.get_attr("IFLA_OPERSTATE") or ""),
                str(link.get_attr("IFLA_ADDRESS") or ""),
                int(link.get_attr("IFLA_MTU") or 0),
                own,
            )
        )
    return NetView(interfaces, [_route(r, names) for r in routes])


def _route(r: Any, names: dict[int, str]) -> Route:
    family = "inet" if r["family"] == socket.AF_INET else "inet6"
    dst = r.get_attr("RTA_DST")
    destination = f"{dst}/{r['dst_len']}" if dst else "default"
    oif = r.get_attr("RTA_OIF")
    return Route(
        destination,
        str(r.get_attr("RTA_GATEWAY") or ""),
        names.get(int(oif), str(oif)) if oif is not None else "",
        family,
    )


_TABLE = re.compile(r"^table (\S+) (\S+) \{")
_CHAIN = re.compile(r"^\s*chain (\S+) \{")
_DNAT = re.compile(r"\bdnat (?:ip )?to ([0-9a-fA-F.:\[\]]+?)(?::(\d+(?:-\d+)?))?(?=\s|$)")
_DPORT = re.compile(r"\b(tcp|udp|sctp) dport (\d+(?:-\d+)?)")
_DADDR = re.compile(r"\bip daddr (\S+)")
_HANDLE = re.compile(r"\s*# handle \d+$")


def parse_dnat(ruleset: str, addresses: set[str]) -> list[NatRule]:
    """The DNAT rules of `nft list ruleset` output whose target is in `addresses`."""
    out = []
    table = chain = ""
    for line in ruleset.splitlines():
        if m := _TABLE.match(line):
            table, chain = f"{m.group(1)} {m.group(2)}", ""
            continue
        if m := _CHAIN.match(line):
            chain = m.group(1)
            continue
        target = _DNAT.search(line)
        if not target or target.group(1).strip("[]") not in addresses:
            continue
        text = _HANDLE.sub("", line).strip()
        port = _DPORT.search(text)
        daddr = _DADDR.search(text)
        out.append(
            NatRule(
                table,
                chain,
                text,
                port.group(1) if port else "",
                daddr.group(1) if daddr else "",
                port.group(2) if port else "",
                target.group(1).strip("[]"),
                target.group(2) or (port.group(2) if port else ""),
            )
        )
    return out


def dnat_rules(addresses: set[str]) -> list[NatRule]:
    """The host's nftables DNAT rules towards `addresses` (none if nft is missing)."""
    if not addresses:
        return []
    try:
        proc = subprocess.run(
            ["nft", "-a", "list", "ruleset"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        return []
    return parse_dnat(proc.stdout, addresses)
