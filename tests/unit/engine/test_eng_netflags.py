"""Pure helpers behind run's network flags (engine/network.py)."""

from __future__ import annotations

from typing import Any

import pytest

from portique.engine import network as net
from portique.errors import InvalidArgument


def test_parse_extra_host_forms() -> None:
    assert net.parse_extra_host("db:10.0.0.2") == ("db", "10.0.0.2")
    assert net.parse_extra_host("db=10.0.0.2") == ("db", "10.0.0.2")
    assert net.parse_extra_host("v6=[::1]") == ("v6", "::1")
    assert net.parse_extra_host("gw:host-gateway") == ("gw", "host-gateway")
    for bad in ("db", "db:", ":1.2.3.4", "db:not-ip", "a b:1.2.3.4"):
        with pytest.raises(InvalidArgument, match="--add-host"):
            net.parse_extra_host(bad)


def test_extra_host_lines_resolve_host_gateway() -> None:
    host = {"ExtraHosts": ["a:1.2.3.4", "gw:host-gateway"]}
    assert net.extra_host_lines(host, "172.18.0.1") == ["1.2.3.4\ta", "172.18.0.1\tgw"]
    assert net.extra_host_lines(host, "")[1] == "127.0.0.1\tgw"
    assert net.extra_host_lines({}, "x") == []


def test_with_dns_flags_replaces_only_what_is_given() -> None:
    resolv = "search lan\nnameserver 10.0.0.1\noptions rotate\n"
    assert net.with_dns_flags(resolv, {}) == resolv
    out = net.with_dns_flags(resolv, {"Dns": ["192.0.2.1"]})
    assert out == "search lan\noptions rotate\nnameserver 192.0.2.1\n"
    out = net.with_dns_flags(resolv, {"DnsSearch": ["a.example", "b"], "DnsOptions": ["ndots:2"]})
    assert out == "nameserver 10.0.0.1\nsearch a.example b\noptions ndots:2\n"
    with pytest.raises(InvalidArgument, match="not an ip"):
        net.check_dns_servers(["1.2.3.4", "dns.example"])


def _config(mode: str, eps: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {"HostConfig": {"NetworkMode": mode}}
    if eps is not None:
        cfg["NetworkingConfig"] = {"EndpointsConfig": eps}
    return cfg


def test_requests_put_network_mode_first_with_its_alias_and_ip() -> None:
    eps = {
        "two": net.endpoint_entry([], None),
        "app": net.endpoint_entry(["www"], "10.1.0.9"),
    }
    reqs = net.requests_of(_config("app", eps))
    assert [(r.network, r.aliases, r.ip) for r in reqs] == [
        ("app", ("www",), "10.1.0.9"),
        ("two", (), None),
    ]
    assert [r.network for r in net.requests_of(_config("default"))] == ["bridge"]
    # none: only what `network connect` recorded; host and container: none at all.
    assert net.requests_of(_config("none")) == []
    assert [r.network for r in net.requests_of(_config("none", {"x": {}}))] == ["x"]
    assert not net.wants_early_setup(type("R", (), {"config": _config("host")})())
    assert not net.wants_early_setup(type("R", (), {"config": _config("container:db")})())
    assert not net.wants_early_setup(type("R", (), {"config": _config("none")})())
    assert net.wants_early_setup(type("R", (), {"config": _config("bridge")})())


def test_modes() -> None:
    assert net.joined_container({"NetworkMode": "container:db"}) == "db"
    assert net.joined_container({"NetworkMode": "bridge"}) == ""
    assert not net.uses_network_layer({"NetworkMode": "container:db"})
    assert not net.uses_network_layer({"NetworkMode": "none"})
    assert net.uses_network_layer({})
    assert net.needs_release(_config("none", {"x": {}}))
    assert not net.needs_release(_config("none"))
