"""Published ports (kernel DNAT, no proxy process) and --internal networks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from portique.errors import Conflict, InvalidArgument
from portique.network import bridge
from portique.network.networks import Networks
from portique.network.ports import parse_port_spec
from portique.network.types import NetworkRequest, PortMapping, Proto
from support.net_helpers import (
    CRAFT_UDP,
    Dummy,
    FakeUpstream,
    Listener,
    NetnsFactory,
    Procs,
    cid,
    free_port,
    http_get_host,
    http_get_in,
    nsexec,
    our_rules,
    query_in,
    random_subnet,
    ruleset,
    tcp_read_in,
    wait_port,
)


def _serve(procs: Procs, netns: Path, tmp_path: Path, text: str) -> None:
    site = tmp_path / text
    site.mkdir()
    (site / "index.html").write_text(text + "\n")
    procs.httpd(netns, site)


def test_publish_on_localhost_serves_the_host(
    nets: Networks, make_netns: NetnsFactory, procs: Procs, tmp_path: Path
) -> None:
    ns = make_netns()
    web = cid()
    ep = nets.connect("bridge", web, ns, container_name="web")
    _serve(procs, ns, tmp_path, "published-hello")
    wait_port(ns, ep.ip, 80)
    port = free_port()
    before = _children()
    got = nets.publish(web, parse_port_spec(f"127.0.0.1:{port}:80"))
    assert got == [PortMapping(80, port, "127.0.0.1", Proto.TCP)]
    assert "published-hello" in http_get_host("127.0.0.1", port)
    # The kernel path: no process was started for the port.
    assert _children() == before
    assert f"tcp dport {port} dnat to {ep.ip}:80" in ruleset()
    assert nets.ports(web) == got

    # A random host port for "-p 80", on all addresses (127.0.0.1 included).
    (rnd,) = nets.publish(web, parse_port_spec("80"))
    assert rnd.host_port >= 49153
    assert "published-hello" in http_get_host("127.0.0.1", rnd.host_port)

    nets.release_container(web)
    assert f"tcp dport {port} " not in ruleset()
    assert nets.ports(web) == []


def test_published_port_reachable_from_another_container(
    nets: Networks, make_netns: NetnsFactory, procs: Procs, tmp_path: Path, dummy: Dummy
) -> None:
    ns_srv, ns_cli = make_netns(), make_netns()
    srv = cid()
    ep = nets.connect("bridge", srv, ns_srv, container_name="srv")
    nets.create("other", subnet=random_subnet())
    nets.connect("other", cid(), ns_cli, container_name="cli")
    _serve(procs, ns_srv, tmp_path, "via-host-address")
    wait_port(ns_srv, ep.ip, 80)
    (m,) = nets.publish(srv, [PortMapping(80)])
    # A container on another network reaches it through a host address (a dummy's).
    out = http_get_in(ns_cli, dummy.ip, m.host_port)
    assert "via-host-address" in out.stdout, out.stderr


def test_port_in_use_is_refused_and_changes_nothing(
    nets: Networks, make_netns: NetnsFactory
) -> None:
    ns = make_netns()
    c1, c2 = cid(), cid()
    nets.connect("bridge", c1, ns, container_name="one")
    nets.connect("bridge", c2, make_netns(), container_name="two")
    busy = Listener("127.0.0.1")
    try:
        rules = our_rules(nets)
        with pytest.raises(Conflict, match=f"127.0.0.1:{busy.port}/tcp: port is already allocated"):
            nets.publish(c1, parse_port_spec(f"127.0.0.1:{busy.port}:80"))
        assert nets.ports(c1) == []
        assert our_rules(nets) == rules
    finally:
        busy.close()
    port = free_port()
    nets.publish(c1, parse_port_spec(f"{port}:80/udp"))
    rules = our_rules(nets)
    # Same port and protocol for another container, on any address: refused.
    with pytest.raises(Conflict, match="already allocated"):
        nets.publish(c2, parse_port_spec(f"127.0.0.1:{port}:81/udp"))
    # Several mappings where the last clashes: none of them is installed.
    other = free_port()
    with pytest.raises(Conflict):
        nets.publish(c2, parse_port_spec(f"{other}:80") + parse_port_spec(f"{port}:80/udp"))
    assert nets.ports(c2) == []
    assert our_rules(nets) == rules
    # The same port over TCP is a different socket: fine.
    nets.publish(c2, parse_port_spec(f"{port}:80/tcp"))
    with pytest.raises(InvalidArgument, match="no such address"):
        nets.publish(c2, parse_port_spec("203.0.113.77:8080:80"))


def test_internal_network_has_no_way_out(
    nets: Networks,
    make_netns: NetnsFactory,
    procs: Procs,
    tmp_path: Path,
    dummy: Dummy,
    upstream: FakeUpstream,
) -> None:
    net = nets.create("sealed", subnet=random_subnet(), internal=True)
    ns_a, ns_b, ns_open = make_netns(), make_netns(), make_netns()
    ep_a = nets.connect("sealed", cid(), ns_a, container_name="a")
    ep_b = nets.connect("sealed", cid(), ns_b, container_name="b")
    assert ep_a.gateway is None
    assert "default" not in nsexec(ns_a, "ip", "route").stdout
    outside = Listener(dummy.ip)
    host_any = Listener("0.0.0.0")
    try:
        # Positive control: a container on a normal network reaches the dummy address.
        nets.connect("bridge", cid(), ns_open, container_name="open")
        assert tcp_read_in(ns_open, dummy.ip, outside.port).stdout == "pong"
        # The internal one cannot: no route...
        r = tcp_read_in(ns_a, dummy.ip, outside.port)
        assert r.returncode != 0
        assert "unreachable" in r.stderr
        # ...and even the host's own sockets behind the gateway are closed to it...
        r = tcp_read_in(ns_a, net.gateway, host_any.port)
        assert r.returncode != 0
        # ...except the embedded DNS, for its own names: nothing is relayed outside.
        assert query_in(ns_a, net.gateway, "b").addresses == (ep_b.ip,)
        assert query_in(ns_a, net.gateway, "example.test").rcode == 2  # SERVFAIL
        assert upstream.queries == []
    finally:
        outside.close()
        host_any.close()
    # Containers on the internal network still talk to each other.
    _serve(procs, ns_b, tmp_path, "inside")
    wait_port(ns_a, ep_b.ip, 80)
    assert "inside" in http_get_in(ns_a, ep_b.ip).stdout
    with pytest.raises(InvalidArgument, match="no non-internal network"):
        nets.publish(ep_a.container_id, [PortMapping(80)])


def _children() -> set[int]:
    """Pids whose parent is this test process (read from /proc, starting nothing)."""
    me = str(os.getpid())
    kids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                status = (d / "status").read_text()
            except OSError:
                continue
            ppid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
            if ppid == me:
                kids.add(int(d.name))
    return kids


def test_setup_container_is_all_or_nothing(
    nets: Networks, make_netns: NetnsFactory, procs: Procs, tmp_path: Path
) -> None:
    front = nets.create("front", subnet=random_subnet())
    back = nets.create("back", subnet=random_subnet())
    taken = nets.connect("back", cid(), make_netns(), container_name="holder")
    ns, c = make_netns(), cid()
    with pytest.raises(Conflict, match="already in use"):
        nets.setup_container(
            c,
            ns,
            container_name="app",
            networks=[NetworkRequest("front", ("web",)), NetworkRequest("back", ip=taken.ip)],
            ports=parse_port_spec("80"),
        )
    assert nets.endpoints(c) == []
    assert nets.ports(c) == []
    assert set(bridge.netns_ifnames(ns)) == {"lo"}

    port = free_port()
    cn = nets.setup_container(
        c,
        ns,
        container_name="app",
        networks=[NetworkRequest("front", ("web",)), NetworkRequest("back")],
        ports=parse_port_spec(f"127.0.0.1:{port}:80"),
    )
    assert [ep.ifname for ep in cn.endpoints] == ["eth0", "eth1"]
    assert [ep.network for ep in cn.endpoints] == ["front", "back"]
    assert cn.ports == (PortMapping(80, port, "127.0.0.1"),)
    assert cn.resolv_conf.startswith(f"nameserver {front.gateway}\n")
    assert cn.hosts == ((cn.endpoints[0].ip, ("app", "web")), (cn.endpoints[1].ip, ("app",)))
    # The default route is the first network's; the port goes to that address.
    assert f"default via {front.gateway} dev eth0" in nsexec(ns, "ip", "route").stdout
    _serve(procs, ns, tmp_path, "first-network")
    wait_port(ns, cn.endpoints[0].ip, 80)
    assert "first-network" in http_get_host("127.0.0.1", port)
    assert back.gateway not in cn.resolv_conf


def test_repair_restores_a_flushed_firewall(nets: Networks, make_netns: NetnsFactory) -> None:
    c = cid()
    nets.connect("bridge", c, make_netns(), container_name="x")
    port = free_port()
    nets.publish(c, parse_port_spec(f"127.0.0.1:{port}:80"))
    subprocess.run(["nft", "delete", "table", "ip", f"{nets.table}_nat"], check=True)
    assert f"dport {port} " not in ruleset()
    nets.repair()  # notices the missing table by itself
    assert f"dport {port} " in ruleset()


UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"echo:" + data, peer)
"""


def test_udp_and_host_address_publishing(
    nets: Networks, make_netns: NetnsFactory, procs: Procs, tmp_path: Path, dummy: Dummy
) -> None:
    ns = make_netns()
    c = cid()
    ep = nets.connect("bridge", c, ns, container_name="u")
    procs.start(ns, sys.executable, "-c", UDP_ECHO)
    _serve(procs, ns, tmp_path, "only-on-dummy")
    wait_port(ns, ep.ip, 80)
    uport, tport = free_port(), free_port()
    nets.publish(c, parse_port_spec(f"127.0.0.1:{uport}:53/udp"))
    # Published on one host address only: reachable there, not on 127.0.0.1.
    nets.publish(c, parse_port_spec(f"{dummy.ip}:{tport}:80"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        reply = b""
        for _ in range(20):  # bounded: the echo server may still be starting
            s.sendto(b"ping", ("127.0.0.1", uport))
            try:
                reply = s.recv(100)
                break
            except TimeoutError:
                continue
    assert reply == b"echo:ping"
    assert "only-on-dummy" in http_get_host(dummy.ip, tport)
    with pytest.raises(ConnectionRefusedError):  # nothing listens on the host itself
        http_get_host("127.0.0.1", tport)


def test_hairpin_container_reaches_its_own_published_port(
    nets: Networks, make_netns: NetnsFactory, procs: Procs, tmp_path: Path, dummy: Dummy
) -> None:
    ns = make_netns()
    c = cid()
    ep = nets.connect("bridge", c, ns, container_name="self")
    _serve(procs, ns, tmp_path, "myself")
    wait_port(ns, ep.ip, 80)
    (m,) = nets.publish(c, [PortMapping(80)])
    out = http_get_in(ns, dummy.ip, m.host_port)
    assert "myself" in out.stdout, out.stderr


def test_containers_cannot_reach_host_loopback_services(
    nets: Networks, make_netns: NetnsFactory
) -> None:
    """route_localnet=1 on the bridge (for 127.0.0.1 ports) must not let a container
    reach the host's 127.0.0.1 services with a hand-made packet (CVE-2020-8558)."""
    ns = make_netns()
    ep = nets.connect("bridge", cid(), ns, container_name="evil")
    net = nets.inspect("bridge")
    bridge_mac = Path(f"/sys/class/net/{net.bridge}/address").read_text().strip()
    # Control: the same packet to the gateway address arrives, so crafting works.
    for target, bind, arrives in (
        (net.gateway, "0.0.0.0", True),
        ("127.0.0.1", "127.0.0.1", False),
    ):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((bind, 0))
            u.settimeout(1.5)
            r = nsexec(ns, sys.executable, "-c", CRAFT_UDP, bridge_mac, ep.mac, ep.ip, target,
                       str(u.getsockname()[1]))  # fmt: skip
            assert r.returncode == 0, r.stderr
            try:
                data = u.recv(100)
            except TimeoutError:
                data = b""
        assert (data == b"spoofed") is arrives, target
