"""Published ports: `-p` parsing and host port choice.

Published ports take the kernel path: a DNAT rule per mapping in portique's
nat table (network/firewall.py), no userland proxy process per port. For
127.0.0.1 the bridge gets `route_localnet=1` and loopback-sourced packets are
masqueraded onto the bridge, so the container answers the gateway and the reply
is un-NATed back to the loopback client (what Docker does with
`userland-proxy: false`).

There is no process holding the host port, so before installing a mapping the
port is checked two ways: against the mappings in the database (inside the
allocation transaction) and by binding it once on the host, which finds any
other program listening there.
"""

from __future__ import annotations

import errno
import ipaddress
import random
import socket
from collections.abc import Callable, Iterable

from portique.errors import Conflict, InvalidArgument
from portique.network.types import PortMapping, Proto

# Docker takes random host ports from the kernel's ephemeral range; keep to its
# upper half so they rarely meet outgoing connections' source ports.
RANDOM_PORT_RANGE = (49153, 60999)
MAX_RANGE = 1024  # one -p never expands to more mappings than this


def _parse_port_range(text: str, what: str) -> tuple[int, int]:
    lo_s, sep, hi_s = text.partition("-")
    try:
        lo = int(lo_s)
        hi = int(hi_s) if sep else lo
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}") from None
    if not (0 < lo <= 65535 and 0 < hi <= 65535) or hi < lo:
        raise InvalidArgument(f"invalid {what} {text!r}: ports are 1-65535")
    if hi - lo + 1 > MAX_RANGE:
        raise InvalidArgument(f"invalid {what} {text!r}: more than {MAX_RANGE} ports")
    return lo, hi


def parse_port_spec(spec: str) -> list[PortMapping]:
    """Parse Docker's `-p [ip:][hostPort:]containerPort[/tcp|udp]`.

    `hostPort` and `containerPort` may be ranges of the same length
    (`8000-8001:80-81`); a missing or empty host port means "a random one"
    (host_port 0). IPv6 host addresses are refused: the networks are IPv4 only.
    """
    body, slash, proto_s = spec.partition("/")
    if slash:
        try:
            proto = Proto(proto_s.lower())
        except ValueError:
            raise InvalidArgument(
                f"invalid port spec {spec!r}: protocol must be tcp or udp"
            ) from None
    else:
        proto = Proto.TCP
    if body.startswith("["):
        raise InvalidArgument(f"invalid port spec {spec!r}: IPv6 host addresses are not supported")
    parts = body.split(":")
    if len(parts) == 1:
        host_ip, host_s, cont_s = "0.0.0.0", "", parts[0]
    elif len(parts) == 2:
        host_ip, host_s, cont_s = "0.0.0.0", parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host_s, cont_s = parts[0] or "0.0.0.0", parts[1], parts[2]
    else:
        raise InvalidArgument(f"invalid port spec {spec!r}")
    try:
        addr = ipaddress.ip_address(host_ip)
    except ValueError:
        raise InvalidArgument(f"invalid port spec {spec!r}: bad host address {host_ip!r}") from None
    if addr.version != 4:
        raise InvalidArgument(f"invalid port spec {spec!r}: IPv6 host addresses are not supported")
    if not cont_s:
        raise InvalidArgument(f"invalid port spec {spec!r}: no container port")
    c_lo, c_hi = _parse_port_range(cont_s, "container port")
    count = c_hi - c_lo + 1
    if not host_s:
        return [PortMapping(p, 0, str(addr), proto) for p in range(c_lo, c_hi + 1)]
    h_lo, h_hi = _parse_port_range(host_s, "host port")
    if h_hi - h_lo + 1 != count:
        raise InvalidArgument(
            f"invalid port spec {spec!r}: host and container port ranges differ in length"
        )
    return [PortMapping(c_lo + i, h_lo + i, str(addr), proto) for i in range(count)]


def mappings_clash(a: PortMapping, b: PortMapping) -> bool:
    """Two mappings want the same host socket: same proto and port, and overlapping address."""
    if a.proto != b.proto or a.host_port != b.host_port:
        return False
    return a.host_ip == b.host_ip or "0.0.0.0" in (a.host_ip, b.host_ip)


def host_port_free(host_ip: str, port: int, proto: Proto) -> bool:
    """True when nothing on the host holds (host_ip, port): one bind, then close.

    SO_REUSEADDR stays off so a listener (or, for TCP, any socket bound there)
    makes the bind fail.
    """
    kind = socket.SOCK_STREAM if proto is Proto.TCP else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC) as s:
        try:
            s.bind((host_ip, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InvalidArgument(
                    f"cannot publish on {host_ip}:{port}: no such address on this host"
                ) from None
            raise
    return True


def choose_host_ports(
    wanted: Iterable[PortMapping],
    taken: Iterable[PortMapping],
    *,
    rng: random.Random | None = None,
    is_free: Callable[[str, int, Proto], bool] | None = None,
) -> list[PortMapping]:
    """Give every mapping a host port, refusing clashes.

    `taken` are the mappings already installed (from the database); `is_free`
    (default: host_port_free) probes the host. A fixed port that is taken raises
    Conflict naming it; a random port is drawn, bounded, from RANDOM_PORT_RANGE.
    """
    probe = host_port_free if is_free is None else is_free
    rng = rng or random.Random()
    out: list[PortMapping] = []
    busy = list(taken)
    for m in wanted:
        if m.host_port:
            if any(mappings_clash(m, t) for t in busy) or not probe(
                m.host_ip, m.host_port, m.proto
            ):
                raise Conflict(
                    f"cannot publish {m.host_ip}:{m.host_port}/{m.proto}: port is already allocated"
                )
            chosen = m
        else:
            found: PortMapping | None = None
            for _ in range(256):
                port = rng.randint(*RANDOM_PORT_RANGE)
                cand = PortMapping(m.container_port, port, m.host_ip, m.proto)
                if not any(mappings_clash(cand, t) for t in busy) and probe(
                    m.host_ip, port, m.proto
                ):
                    found = cand
                    break
            if found is None:
                raise Conflict(f"no free host port for {m.container_port}/{m.proto}")
            chosen = found
        busy.append(chosen)
        out.append(chosen)
    return out


def exposed_ports(exposed: Iterable[str], host_ip: str = "0.0.0.0") -> list[PortMapping]:
    """`-P`: a random host port for each of the image's ExposedPorts keys ("80/tcp")."""
    out = []
    for key in exposed:
        port_s, _, proto_s = key.partition("/")
        try:
            proto = Proto((proto_s or "tcp").lower())
            port = int(port_s)
        except ValueError:
            continue  # sctp or garbage in an image config: nothing we can publish
        if 0 < port <= 65535:
            out.append(PortMapping(port, 0, host_ip, proto))
    return out


def format_ports(mappings: Iterable[PortMapping]) -> str:
    """The PORTS column of `ps`: "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp"."""
    return ", ".join(f"{m.host_ip}:{m.host_port}->{m.container_port}/{m.proto}" for m in mappings)


__all__ = [
    "RANDOM_PORT_RANGE",
    "choose_host_ports",
    "exposed_ports",
    "format_ports",
    "host_port_free",
    "mappings_clash",
    "parse_port_spec",
]
