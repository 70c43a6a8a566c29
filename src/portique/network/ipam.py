"""IP address management: pure arithmetic over subnets and addresses.

The database (network/db.py) holds the leases; these functions decide, from
what is taken, which subnet or address comes next. Allocation happens inside a
`BEGIN IMMEDIATE` transaction, so the "taken" set a caller passes in is exact.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network

from portique.errors import Conflict, InvalidArgument

# Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut in /20.
DEFAULT_POOLS: tuple[tuple[str, int], ...] = (("172.17.0.0/16", 16), ("172.18.0.0/15", 16),
                                              ("172.20.0.0/14", 16), ("172.24.0.0/13", 16),
                                              ("192.168.0.0/16", 20))  # fmt: skip


def parse_subnet(text: str) -> IPv4Network:
    """A CIDR subnet; host bits must be zero, as Docker demands."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid subnet {text!r}: {exc}") from None
    if not isinstance(net, IPv4Network):
        raise InvalidArgument(f"invalid subnet {text!r}: only IPv4 is supported")
    if net.prefixlen > 30:
        raise InvalidArgument(f"invalid subnet {text}: a prefix longer than /30 leaves no room")
    return net


def parse_address(text: str, what: str = "address") -> IPv4Address:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}") from None
    if not isinstance(addr, IPv4Address):
        raise InvalidArgument(f"invalid {what} {text!r}: only IPv4 is supported")
    return addr


def check_in_subnet(net: IPv4Network, addr: IPv4Address, what: str) -> None:
    if addr not in net or addr in (net.network_address, net.broadcast_address):
        raise InvalidArgument(f"{what} {addr} is not a usable address of subnet {net}")


def default_gateway(net: IPv4Network) -> IPv4Address:
    """The first host address, as Docker picks it."""
    return net.network_address + 1


def candidate_subnets(pools: Sequence[tuple[str, int]] = DEFAULT_POOLS) -> Iterable[IPv4Network]:
    for base, size in pools:
        yield from IPv4Network(base).subnets(new_prefix=size)


def pick_subnet(
    taken: Iterable[IPv4Network], pools: Sequence[tuple[str, int]] = DEFAULT_POOLS
) -> IPv4Network:
    """The first pool subnet overlapping nothing in `taken` (networks and host routes)."""
    used = list(taken)
    for cand in candidate_subnets(pools):
        if not any(cand.overlaps(t) for t in used):
            return cand
    raise Conflict("no free subnet left in the default address pools (give one with --subnet)")


def find_overlap(net: IPv4Network, taken: Iterable[IPv4Network]) -> IPv4Network | None:
    for t in taken:
        if net.overlaps(t):
            return t
    return None


def next_free_address(
    net: IPv4Network, gateway: IPv4Address, used: Iterable[IPv4Address]
) -> IPv4Address:
    """The lowest host address that is neither the gateway nor leased."""
    busy = set(used)
    busy.add(gateway)
    # Walk host addresses lazily: a /8 has 16 million, but we stop at the first hole,
    # and there are never more leases than len(busy) before one.
    limit = len(busy) + 1
    for i, addr in enumerate(net.hosts()):
        if addr not in busy:
            return addr
        if i > limit:  # pragma: no cover - unreachable: a hole exists within len(busy)+1
            break
    raise Conflict(f"no free address left in subnet {net}")


def mac_for_address(addr: IPv4Address) -> str:
    """Docker's scheme: 02:42 then the four bytes of the IPv4 address.

    Locally administered (bit 1 of the first byte), unicast, and unique on the
    bridge because the address is.
    """
    return "02:42:" + ":".join(f"{b:02x}" for b in addr.packed)


def parse_mac(text: str) -> str:
    parts = text.lower().split(":")
    if len(parts) != 6 or not all(
        len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts
    ):
        raise InvalidArgument(f"invalid MAC address {text!r}")
    if int(parts[0], 16) & 1:
        raise InvalidArgument(f"invalid MAC address {text!r}: multicast bit set")
    return ":".join(parts)


__all__ = [
    "DEFAULT_POOLS",
    "candidate_subnets",
    "check_in_subnet",
    "default_gateway",
    "find_overlap",
    "mac_for_address",
    "next_free_address",
    "parse_address",
    "parse_mac",
    "parse_subnet",
    "pick_subnet",
]
