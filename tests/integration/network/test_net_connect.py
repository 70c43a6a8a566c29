"""Containers on bridge networks: addresses, routes, reachability, names."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

import pytest

from portique.errors import Conflict, InvalidArgument, NotFound
from portique.network import bridge, dnsserver
from portique.network.networks import Networks, bring_up_loopback
from support.net_helpers import (
    UPSTREAM_ANSWER,
    NetnsFactory,
    Procs,
    cid,
    http_get_in,
    nsexec,
    query_in,
    random_subnet,
    set_resolv_conf,
    wait_port,
)


def _site(tmp_path: Path, text: str) -> Path:
    site = tmp_path / ("www-" + text)
    site.mkdir()
    (site / "index.html").write_text(text + "\n")
    return site


def test_two_containers_reach_each_other_by_ip_name_and_alias(
    nets: Networks, make_netns: NetnsFactory, procs: Procs, tmp_path: Path
) -> None:
    net = nets.create("app", subnet=random_subnet())
    ns_db, ns_web = make_netns(), make_netns()
    db_id, web_id = cid(), cid()
    ep_db = nets.connect("app", db_id, ns_db, container_name="db", aliases=["database"])
    ep_web = nets.connect("app", web_id, ns_web, container_name="/web")
    assert ep_db.ip != ep_web.ip
    assert ep_db.ifname == "eth0"
    assert ep_db.gateway == net.gateway
    assert ipaddress.IPv4Address(ep_db.ip) in ipaddress.IPv4Network(net.subnet)

    # Inside: eth0 with the address, lo up, default route via the gateway.
    addr = nsexec(ns_db, "ip", "-br", "addr", check=True).stdout
    assert f"{ep_db.ip}/{ep_db.prefixlen}" in addr
    assert any(line.startswith("lo ") and "UNKNOWN" in line for line in addr.splitlines())
    route = nsexec(ns_db, "ip", "route", check=True).stdout
    assert f"default via {net.gateway} dev eth0" in route
    assert nsexec(ns_db, "cat", "/sys/class/net/eth0/address").stdout.strip() == ep_db.mac

    procs.httpd(ns_db, _site(tmp_path, "hello-from-db"))
    wait_port(ns_web, ep_db.ip, 80)
    assert "hello-from-db" in http_get_in(ns_web, ep_db.ip).stdout

    # The embedded DNS on the gateway answers names, aliases and short IDs...
    for name in ("db", "database", "DB", db_id[:12]):
        ans = query_in(ns_web, net.gateway, name)
        assert (ans.rcode, ans.addresses) == (0, (ep_db.ip,)), name
    assert query_in(ns_db, net.gateway, "web").addresses == (ep_web.ip,)
    # ...and busybox's resolver (what a container's nslookup/wget uses) agrees.
    out = nsexec(ns_web, "/bin/busybox", "nslookup", "db", net.gateway).stdout
    assert ep_db.ip in out
    # Other names go to the host's resolvers (a fake one on 127.0.0.1 here).
    assert query_in(ns_web, net.gateway, "example.test").addresses == (UPSTREAM_ANSWER,)
    # resolv.conf points the container at it.
    assert nets.resolv_conf(web_id).splitlines()[0] == f"nameserver {net.gateway}"
    assert nets.hosts_entries(db_id) == [(ep_db.ip, ["db", "database"])]

    # By name, end to end: the resolv.conf the engine would write (`ip netns exec`
    # bind-mounts /etc/netns/NAME/resolv.conf), libc's resolver, then HTTP.
    set_resolv_conf(ns_web, nets.resolv_conf(web_id))
    assert "hello-from-db" in http_get_in(ns_web, "database").stdout

    # Disconnect: the interface leaves the netns, the name stops resolving.
    nets.disconnect("app", db_id)
    assert "eth0" not in bridge.netns_ifnames(ns_db)
    assert query_in(ns_web, net.gateway, "db").rcode == 0  # relayed upstream now
    assert query_in(ns_web, net.gateway, "db").addresses == (UPSTREAM_ANSWER,)
    nets.release_container(web_id)
    assert dnsserver.running(nets.run_dir) == {}


def test_default_bridge_resolves_no_names(
    nets: Networks, make_netns: NetnsFactory, procs: Procs, tmp_path: Path
) -> None:
    a, b = make_netns(), make_netns()
    ida, idb = cid(), cid()
    ep_a = nets.connect("bridge", ida, a, container_name="alpha")
    ep_b = nets.connect("bridge", idb, b, container_name="beta")
    default = nets.inspect("bridge")
    assert default.is_default
    assert default.bridge == nets.default_bridge
    # No embedded DNS: no resolver process, resolv.conf from the host, no server on :53.
    assert dnsserver.running(nets.run_dir) == {}
    assert f"nameserver {default.gateway}" not in nets.resolv_conf(ida)
    r = nsexec(a, "/bin/busybox", "nslookup", "beta", default.gateway, timeout=30)
    assert ep_b.ip not in r.stdout
    # Reachable by address all the same.
    procs.httpd(b, _site(tmp_path, "beta"))
    wait_port(a, ep_b.ip, 80)
    assert "beta" in http_get_in(a, ep_b.ip).stdout
    with pytest.raises(InvalidArgument):
        nets.connect("bridge", cid(), make_netns(), container_name="x", aliases=["y"])
    assert ep_a.ip != ep_b.ip


def test_static_ip_mac_and_conflicts(nets: Networks, make_netns: NetnsFactory) -> None:
    subnet = ipaddress.IPv4Network(random_subnet())
    nets.create("static", subnet=str(subnet))
    want = str(subnet.network_address + 77)
    ns1 = make_netns()
    ep = nets.connect("static", cid(), ns1, container_name="s1", ip=want, mac="02:00:00:aa:bb:cc")
    assert ep.ip == want
    assert ep.mac == "02:00:00:aa:bb:cc"
    with pytest.raises(Conflict, match="already in use"):
        nets.connect("static", cid(), make_netns(), container_name="s2", ip=want)
    with pytest.raises(InvalidArgument, match="not a usable address"):
        nets.connect("static", cid(), make_netns(), container_name="s3", ip="192.0.2.99")
    with pytest.raises(Conflict, match="already attached"):
        nets.connect("static", ep.container_id, ns1, container_name="s1")
    with pytest.raises(NotFound):
        nets.connect("nope", cid(), ns1, container_name="s4")
    # A failed connect leaves no lease behind.
    assert [e.ip for e in nets.network_endpoints("static")] == [want]


def test_second_network_is_eth1_and_networks_are_isolated(
    nets: Networks, make_netns: NetnsFactory, procs: Procs, tmp_path: Path
) -> None:
    nets.create("front", subnet=random_subnet())
    back = nets.create("back", subnet=random_subnet())
    ns_a, ns_b = make_netns(), make_netns()
    ida = cid()
    nets.connect("front", ida, ns_a, container_name="a")
    ep_a1 = nets.connect("back", ida, ns_a, container_name="a")
    assert ep_a1.ifname == "eth1"
    assert {"eth0", "eth1", "lo"} <= set(bridge.netns_ifnames(ns_a))
    ep_b = nets.connect("back", cid(), ns_b, container_name="b")
    procs.httpd(ns_b, _site(tmp_path, "bee"))
    wait_port(ns_a, ep_b.ip, 80)  # same network "back": reachable
    ns_c = make_netns()
    nets.connect("front", cid(), ns_c, container_name="c")
    # c is only on "front": the forward filter drops front -> back.
    r = nsexec(ns_c, "python3", "-c",
               "import socket,sys; socket.create_connection((sys.argv[1], 80), timeout=2)",
               ep_b.ip)  # fmt: skip
    assert r.returncode != 0
    # Nor may it ask "back"'s resolver for its names (the gateway is a host address).
    refused = query_in(ns_c, back.gateway, "b")
    assert (refused.rcode, refused.addresses) == (5, ())


def test_network_none_is_loopback_only(make_netns: NetnsFactory) -> None:
    ns = make_netns()
    assert "DOWN" in nsexec(ns, "ip", "-br", "link", "show", "lo").stdout
    bring_up_loopback(ns)
    links = nsexec(ns, "ip", "-br", "link", check=True).stdout.splitlines()
    assert len(links) == 1
    assert links[0].startswith("lo ")
    assert "UP" in links[0]
    assert nsexec(ns, "/bin/busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1").returncode == 0


def test_resolv_conf_variants(nets: Networks, make_netns: NetnsFactory, tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text(
        "nameserver 127.0.0.53\nnameserver 10.1.2.3\nsearch corp.example\noptions edns0\n"
    )
    user = nets.create("named", subnet=random_subnet())
    on_default, on_user = cid(), cid()
    nets.connect("bridge", on_default, make_netns(), container_name="d")
    nets.connect("named", on_user, make_netns(), container_name="u")
    # Default bridge: the host's resolvers minus loopback ones, its search and options.
    assert nets.resolv_conf(on_default, host_resolv=host) == (
        "nameserver 10.1.2.3\nsearch corp.example\noptions edns0\n"
    )
    # --dns/--dns-search/--dns-option replace them.
    got = nets.resolv_conf(
        on_default, dns=["10.9.8.7"], dns_search=["a.test"], dns_options=["ndots:2"],
        host_resolv=host,
    )  # fmt: skip
    assert got == "nameserver 10.9.8.7\nsearch a.test\noptions ndots:2\n"
    # Only loopback resolvers on the host: Docker's public fallback.
    host.write_text("nameserver 127.0.0.53\n")
    assert nets.resolv_conf(on_default, host_resolv=host).startswith("nameserver 8.8.8.8\n")
    # A user-defined network: the embedded DNS, whatever --dns says.
    assert nets.resolv_conf(on_user, dns=["10.9.8.7"], host_resolv=host) == (
        f"nameserver {user.gateway}\n"
    )
    with pytest.raises(InvalidArgument, match="invalid DNS server"):
        nets.resolv_conf(on_default, dns=["not-an-ip"])


def test_bridge_name_and_mtu_options(nets: Networks, make_netns: NetnsFactory) -> None:
    name = "pqt." + secrets.token_hex(3)  # a dot: sysctl paths must not split on it
    nets.create(
        "opts",
        subnet=random_subnet(),
        options={"com.docker.network.bridge.name": name, "com.docker.network.driver.mtu": "1400"},
    )
    ns = make_netns()
    nets.connect("opts", cid(), ns, container_name="m")
    sys_net = Path("/sys/class/net") / name
    assert (sys_net / "mtu").read_text().strip() == "1400"
    assert Path(f"/proc/sys/net/ipv4/conf/{name}/route_localnet").read_text().strip() == "1"
    assert nsexec(ns, "cat", "/sys/class/net/eth0/mtu").stdout.strip() == "1400"
    assert nets.inspect_json("opts")["Options"]["com.docker.network.bridge.name"] == name
    with pytest.raises(Conflict, match="already used"):
        nets.create("opts2", options={"com.docker.network.bridge.name": name})
    with pytest.raises(InvalidArgument, match="invalid bridge name"):
        nets.create("bad", options={"com.docker.network.bridge.name": "x" * 16})
