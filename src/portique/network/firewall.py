"""Packet filtering and NAT in nftables tables of portique's own.

Decision: nftables, driven by the `nft` binary reading a ruleset script on
stdin (`nft -f -`), rather than iptables or pyroute2's nftables support. The
script is rendered by pure functions from the state in the database (networks
and published ports) and replaces portique's tables as a whole in one nft
transaction:

    table ip <name>_nat {}        # make sure it exists so that...
    delete table ip <name>_nat    # ...this never fails
    table ip <name>_nat { ... }   # ...and the new content lands atomically

So the kernel's rules are always a function of the database: removing a
network or a port is "sync again", a crash mid-way is repaired by the next
sync, and nothing outside portique's tables is touched. Two tables per engine
root (the root's name in them, so test roots never clobber the real one):

- `table ip portique_nat`: DNAT of published ports (prerouting for packets
  from outside and containers, output for the host's own connections, both
  only for local destination addresses), masquerade of outbound traffic from
  non-internal networks, of loopback clients of published ports (the bridge
  has route_localnet=1), and of hairpin traffic (container -> published port
  -> container on the same bridge).
- `table inet portique`: forward filter (isolation between portique bridges,
  --internal networks closed both ways, new connections into a bridge only
  when DNATed) and an input filter: nothing from a bridge to 127.0.0.0/8 but
  replies (route_localnet must not open the host's loopback services to
  containers), and an --internal network reaches only the embedded DNS on
  its gateway.

Every rule carries a comment naming its network or container, for people
reading `nft list ruleset`.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from portique.errors import PortiqueError
from portique.network.types import PublishedPort

DEFAULT_ROOT = Path("/var/lib/portique")


@dataclass(frozen=True, slots=True)
class BridgeRules:
    """What the firewall needs to know about one network."""

    network_id: str
    bridge: str
    subnet: str
    gateway: str
    internal: bool


def table_name(root: Path) -> str:
    """`portique` for the default engine root, `portique_<hash>` for any other."""
    if root.resolve() == DEFAULT_ROOT:
        return "portique"
    return "portique_" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]


def _q(text: str) -> str:
    # nft strings: our names are [a-z0-9-], but quote defensively.
    return '"' + text.replace('"', "") + '"'


def _owner_line(owner: str) -> list[str]:
    # The engine root in the table's comment: repair() finds the tables of a root
    # deleted without cleanup (a test's tmp dir), as the bridge's ifalias does.
    return [f"  comment {_q(owner)}"] if owner else []


def render_nat(
    table: str, nets: Sequence[BridgeRules], ports: Sequence[PublishedPort], owner: str = ""
) -> str:
    lines = [f"table ip {table}_nat {{", *_owner_line(owner)]
    lines += [
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        "    fib daddr type local jump published",
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
        "    fib daddr type local jump published",
        "  }",
        "  chain published {",
    ]
    for p in ports:
        m = p.mapping
        match = "" if m.host_ip == "0.0.0.0" else f"ip daddr {m.host_ip} "
        lines.append(
            f"    {match}{m.proto} dport {m.host_port} dnat to {p.container_ip}:{m.container_port}"
            f" comment {_q('container ' + p.container_id[:12])}"
        )
    lines += [
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
    ]
    for n in nets:
        c = _q("network " + n.network_id[:12])
        br = _q(n.bridge)
        # Loopback clients of a published port: the container must answer the gateway.
        lines.append(f"    oifname {br} ip saddr 127.0.0.0/8 masquerade comment {c}")
        # Hairpin: a container reaching a published port of its own bridge.
        lines.append(f"    oifname {br} ip saddr {n.subnet} ct status dnat masquerade comment {c}")
        if not n.internal:
            lines.append(f"    oifname != {br} ip saddr {n.subnet} masquerade comment {c}")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def render_filter(table: str, nets: Sequence[BridgeRules], owner: str = "") -> str:
    """The forward rules, in this order: --internal bridges closed both ways (first, so
    nothing below reopens them); replies of allowed connections; published ports
    (DNATed, reachable from anywhere, other networks included); isolation between
    bridges; no new connection into a bridge from outside it."""
    lines = [f"table inet {table} {{", *_owner_line(owner), "  chain forward {",
             "    type filter hook forward priority filter; policy accept;"]  # fmt: skip
    open_nets = [n for n in nets if not n.internal]
    for n in nets:
        if n.internal:
            c, br = _q("network " + n.network_id[:12]), _q(n.bridge)
            lines.append(f"    iifname {br} oifname != {br} drop comment {c}")
            lines.append(f"    oifname {br} iifname != {br} drop comment {c}")
    lines.append("    ct state established,related accept")
    for n in open_nets:
        c, br = _q("network " + n.network_id[:12]), _q(n.bridge)
        lines.append(f"    oifname {br} ct status dnat accept comment {c}")
    for n in open_nets:
        c, br = _q("network " + n.network_id[:12]), _q(n.bridge)
        lines.extend(
            f"    iifname {br} oifname {_q(o.bridge)} drop comment {c}"
            for o in open_nets
            if o.bridge != n.bridge
        )
    for n in open_nets:
        c, br = _q("network " + n.network_id[:12]), _q(n.bridge)
        lines.append(f"    oifname {br} iifname != {br} drop comment {c}")
    lines += [
        "  }",
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
    ]
    for n in nets:
        # route_localnet=1 (for 127.0.0.1 published ports) would also let a container
        # send to the host's 127.0.0.1 services through the bridge (CVE-2020-8558):
        # only replies of our own DNATed connections may come in for 127.0.0.0/8.
        c, br = _q("network " + n.network_id[:12]), _q(n.bridge)
        lines.append(
            f"    iifname {br} ip daddr 127.0.0.0/8 ct state established,related accept comment {c}"
        )
        lines.append(f"    iifname {br} ip daddr 127.0.0.0/8 drop comment {c}")
    for n in nets:
        if not n.internal:
            continue
        c = _q("network " + n.network_id[:12])
        br = _q(n.bridge)
        lines.append(f"    iifname {br} ct state established,related accept comment {c}")
        lines.append(f"    iifname {br} ip daddr {n.gateway} udp dport 53 accept comment {c}")
        lines.append(f"    iifname {br} ip daddr {n.gateway} tcp dport 53 accept comment {c}")
        lines.append(f"    iifname {br} drop comment {c}")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def render_ruleset(
    table: str, nets: Sequence[BridgeRules], ports: Sequence[PublishedPort], owner: str = ""
) -> str:
    """The nft script replacing portique's two tables atomically; `owner`, the engine
    root's path, goes into each table's comment."""
    return (
        f"table ip {table}_nat {{}}\ndelete table ip {table}_nat\n"
        f"table inet {table} {{}}\ndelete table inet {table}\n"
        + render_nat(table, nets, ports, owner)
        + render_filter(table, nets, owner)
    )


def render_flush(table: str) -> str:
    """The nft script removing portique's tables (nothing left behind)."""
    return (
        f"table ip {table}_nat {{}}\ndelete table ip {table}_nat\n"
        f"table inet {table} {{}}\ndelete table inet {table}\n"
    )


class FirewallError(PortiqueError):
    pass


def apply(script: str) -> None:
    """Run an nft script as one transaction; nothing changes if it fails."""
    try:
        proc = subprocess.run(
            ["nft", "-f", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        raise FirewallError(
            "cannot program the firewall: the nft command is not installed"
        ) from None
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["unknown error"])[0]
        raise FirewallError(f"cannot program the firewall: nft: {first}")


def list_tables() -> list[tuple[str, str]]:
    """(family, name) of every nftables table on the host."""
    proc = subprocess.run(
        ["nft", "list", "tables"], capture_output=True, text=True, timeout=30, check=False
    )
    out = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table":
            out.append((parts[1], parts[2]))
    return out


def table_owner(family: str, name: str) -> str | None:
    """The comment of one nftables table (portique writes its engine root there), or
    None when it has none or is gone. `nft list tables` does not show comments."""
    proc = subprocess.run(
        ["nft", "list", "table", family, name],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    for line in proc.stdout.splitlines()[1:3]:
        text = line.strip()
        if text.startswith('comment "') and text.endswith('"'):
            return text[len('comment "') : -1]
    return None


__all__ = [
    "BridgeRules",
    "FirewallError",
    "apply",
    "list_tables",
    "render_filter",
    "render_flush",
    "render_nat",
    "render_ruleset",
    "table_name",
    "table_owner",
]
