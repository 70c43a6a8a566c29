"""IPAM arithmetic and `-p` parsing: pure functions."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from portique.errors import Conflict, InvalidArgument
from portique.network import ipam
from portique.network.ports import (
    RANDOM_PORT_RANGE,
    choose_host_ports,
    exposed_ports,
    format_ports,
    mappings_clash,
    parse_port_spec,
)
from portique.network.types import PortMapping, Proto

# --- IPAM -------------------------------------------------------------------------------


def test_pool_order_is_dockers() -> None:
    cands = list(ipam.candidate_subnets())
    assert cands[0] == IPv4Network("172.17.0.0/16")
    assert cands[14] == IPv4Network("172.31.0.0/16")
    assert cands[15] == IPv4Network("192.168.0.0/20")
    assert cands[-1] == IPv4Network("192.168.240.0/20")
    assert len(cands) == 15 + 16


def test_pick_subnet_skips_taken_and_overlapping() -> None:
    taken = [IPv4Network("172.17.0.0/16"), IPv4Network("172.18.5.0/24")]
    assert ipam.pick_subnet(taken) == IPv4Network("172.19.0.0/16")
    # A host route covering several pool entries (a /12) skips them all.
    assert ipam.pick_subnet([IPv4Network("172.16.0.0/12")]) == IPv4Network("192.168.0.0/20")
    everything = [IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16")]
    with pytest.raises(Conflict, match="no free subnet"):
        ipam.pick_subnet(everything)
    assert ipam.pick_subnet([], [("10.1.0.0/16", 24)]) == IPv4Network("10.1.0.0/24")


def test_next_free_address_lowest_hole_never_gateway() -> None:
    net = IPv4Network("10.0.0.0/29")  # hosts .1-.6
    gw = ipam.default_gateway(net)
    assert gw == IPv4Address("10.0.0.1")
    assert ipam.next_free_address(net, gw, []) == IPv4Address("10.0.0.2")
    used = {IPv4Address("10.0.0.2"), IPv4Address("10.0.0.4")}
    assert ipam.next_free_address(net, gw, used) == IPv4Address("10.0.0.3")
    full = {IPv4Address(f"10.0.0.{i}") for i in range(2, 7)}
    with pytest.raises(Conflict, match="no free address"):
        ipam.next_free_address(net, gw, full)
    # A gateway elsewhere in the subnet frees .1 for containers.
    assert ipam.next_free_address(net, IPv4Address("10.0.0.6"), []) == IPv4Address("10.0.0.1")


def test_next_free_address_on_a_huge_subnet_is_lazy() -> None:
    net = IPv4Network("10.0.0.0/8")
    used = {IPv4Address("10.0.0.2") + i for i in range(1000)}
    assert ipam.next_free_address(net, ipam.default_gateway(net), used) == IPv4Address("10.0.3.234")


def test_sequential_allocation_is_unique() -> None:
    net = IPv4Network("10.9.0.0/24")
    gw = ipam.default_gateway(net)
    used: set[IPv4Address] = set()
    for _ in range(253):
        used.add(ipam.next_free_address(net, gw, used))
    assert len(used) == 253
    assert gw not in used


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("10.0.0.1/24", "host bits"),
        ("nope", "invalid subnet"),
        ("fd00::/64", "only IPv4"),
        ("10.0.0.0/31", "longer than /30"),
    ],
)
def test_parse_subnet_rejects(text: str, error: str) -> None:
    with pytest.raises(InvalidArgument, match=error):
        ipam.parse_subnet(text)


def test_gateway_and_mac_rules() -> None:
    net = IPv4Network("10.0.0.0/24")
    ipam.check_in_subnet(net, IPv4Address("10.0.0.254"), "gateway")
    for bad in ("10.0.0.0", "10.0.0.255", "10.0.1.1"):
        with pytest.raises(InvalidArgument):
            ipam.check_in_subnet(net, IPv4Address(bad), "gateway")
    assert ipam.mac_for_address(IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"
    assert ipam.parse_mac("02:AA:bb:cc:dd:ee") == "02:aa:bb:cc:dd:ee"
    for bad in ("01:00:00:00:00:00", "02:00:00:00:00", "zz:00:00:00:00:00"):
        with pytest.raises(InvalidArgument):
            ipam.parse_mac(bad)
    assert ipam.find_overlap(net, [IPv4Network("10.0.0.128/25")]) == IPv4Network("10.0.0.128/25")
    assert ipam.find_overlap(net, [IPv4Network("10.0.1.0/24")]) is None


# --- -p parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [PortMapping(80)]),
        ("8080:80", [PortMapping(80, 8080)]),
        ("127.0.0.1:8080:80", [PortMapping(80, 8080, "127.0.0.1")]),
        ("127.0.0.1::80", [PortMapping(80, 0, "127.0.0.1")]),
        (":8080:80", [PortMapping(80, 8080)]),
        ("53/udp", [PortMapping(53, 0, "0.0.0.0", Proto.UDP)]),
        ("5353:53/UDP", [PortMapping(53, 5353, "0.0.0.0", Proto.UDP)]),
        ("8000-8001:80-81", [PortMapping(80, 8000), PortMapping(81, 8001)]),
        ("80-82", [PortMapping(80), PortMapping(81), PortMapping(82)]),
    ],
)
def test_parse_port_spec(spec: str, expected: list[PortMapping]) -> None:
    assert parse_port_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("", "no container port"),
        ("abc", "invalid container port"),
        ("0", "1-65535"),
        ("70000", "1-65535"),
        ("80/sctp", "tcp or udp"),
        ("8000-8002:80-81", "differ in length"),
        ("90-80", "1-65535"),
        ("1.2.3:80:80", "bad host address"),
        ("[::1]:80:80", "IPv6"),
        ("::1:80:80", "invalid port spec"),
        ("1-2000", "more than"),
        ("8080:", "no container port"),
    ],
)
def test_parse_port_spec_rejects(spec: str, error: str) -> None:
    with pytest.raises(InvalidArgument, match=error):
        parse_port_spec(spec)


def test_str_is_dockers_port_line() -> None:
    assert str(PortMapping(80, 8080, "0.0.0.0")) == "80/tcp -> 0.0.0.0:8080"


def test_mappings_clash() -> None:
    a = PortMapping(80, 8080, "127.0.0.1")
    assert mappings_clash(a, PortMapping(81, 8080, "0.0.0.0"))
    assert mappings_clash(a, PortMapping(81, 8080, "127.0.0.1"))
    assert not mappings_clash(a, PortMapping(81, 8080, "10.0.0.1"))
    assert not mappings_clash(a, PortMapping(81, 8080, "127.0.0.1", Proto.UDP))
    assert not mappings_clash(a, PortMapping(81, 8081, "127.0.0.1"))


def test_choose_host_ports_fixed_random_and_conflicts() -> None:
    probed: list[tuple[str, int, Proto]] = []

    def free(ip: str, port: int, proto: Proto) -> bool:
        probed.append((ip, port, proto))
        return port != 9999  # something else listens on 9999

    taken = [PortMapping(80, 8080)]
    got = choose_host_ports(
        [PortMapping(80, 8081), PortMapping(443)], taken, rng=random.Random(1), is_free=free
    )
    assert got[0] == PortMapping(80, 8081)
    assert RANDOM_PORT_RANGE[0] <= got[1].host_port <= RANDOM_PORT_RANGE[1]
    with pytest.raises(Conflict, match=r"0\.0\.0\.0:8080/tcp: port is already allocated"):
        choose_host_ports([PortMapping(80, 8080)], taken, is_free=free)
    with pytest.raises(Conflict, match="9999"):
        choose_host_ports([PortMapping(80, 9999)], [], is_free=free)
    # Two mappings of one request may not take the same port either.
    with pytest.raises(Conflict):
        choose_host_ports([PortMapping(80, 7000), PortMapping(81, 7000)], [], is_free=free)
    with pytest.raises(Conflict, match="no free host port"):
        choose_host_ports([PortMapping(80)], [], is_free=lambda *_: False)


def test_exposed_ports_for_dash_capital_p() -> None:
    got = exposed_ports(["80/tcp", "53/udp", "9000", "132/sctp", "x/tcp", "0/tcp"])
    assert got == [
        PortMapping(80, 0, "0.0.0.0", Proto.TCP),
        PortMapping(53, 0, "0.0.0.0", Proto.UDP),
        PortMapping(9000, 0, "0.0.0.0", Proto.TCP),
    ]


def test_format_ports_is_dockers_ps_column() -> None:
    ms = [PortMapping(80, 8080), PortMapping(53, 5353, "127.0.0.1", Proto.UDP)]
    assert format_ports(ms) == "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp"
    assert format_ports([]) == ""


def test_dns_upstreams_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from portique.network.attachment import upstreams
    from portique.network.networks import Networks
    from portique.network.types import NetworkRecord

    nets = Networks(tmp_path / "root", run_root=tmp_path / "run")
    rec = NetworkRecord("a" * 64, "n", "bridge", "pq-x", "10.0.0.0/24", "10.0.0.1", False, False)
    monkeypatch.setenv("PORTIQUE_DNS_UPSTREAMS", "127.0.0.1:5353, 10.0.0.53")
    assert upstreams(nets, rec) == [("127.0.0.1", 5353), ("10.0.0.53", 53)]
    monkeypatch.setenv("PORTIQUE_DNS_UPSTREAMS", "")
    assert upstreams(nets, rec) == []
    monkeypatch.setenv("PORTIQUE_DNS_UPSTREAMS", "nope:53")
    with pytest.raises(InvalidArgument):
        upstreams(nets, rec)
    internal = NetworkRecord(
        "b" * 64, "i", "bridge", "pq-y", "10.0.1.0/24", "10.0.1.1", True, False
    )
    monkeypatch.setenv("PORTIQUE_DNS_UPSTREAMS", "127.0.0.1:5353")
    assert upstreams(nets, internal) == []  # sealed networks relay nowhere
