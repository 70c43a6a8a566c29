"""Network lifecycle: refusals, concurrency, churn, crash repair."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from portique.errors import Conflict, InvalidArgument
from portique.network import bridge, dnsserver
from portique.network.networks import Networks
from portique.network.ports import parse_port_spec
from portique.network.types import NetworkRequest
from support.net_helpers import (
    NetnsFactory,
    cid,
    free_port,
    http_get_host,
    random_subnet,
    ruleset,
    table_exists,
)


def _our_veths(nets: Networks) -> list[str]:
    """Veths in the host namespace enslaved to any of this root's bridges."""
    links = bridge.host_links()
    ours = {lk.index for lk in links if lk.kind == "bridge" and nets.owns(lk.alias)}
    return [lk.name for lk in links if lk.kind == "veth" and lk.master in ours]


def test_overlapping_subnet_and_duplicate_name_refused(nets: Networks) -> None:
    subnet = ipaddress.IPv4Network(random_subnet())
    nets.create("one", subnet=str(subnet))
    inner = str(next(subnet.subnets(new_prefix=26)))
    with pytest.raises(Conflict, match="overlaps"):
        nets.create("two", subnet=inner)
    with pytest.raises(Conflict, match="already exists"):
        nets.create("one", subnet=random_subnet())
    with pytest.raises(Conflict, match="overlaps with host route"):
        nets.create("three", subnet="127.0.0.0/24")
    with pytest.raises(InvalidArgument):
        nets.create("bad", subnet="10.0.0.1/24")  # host bits set
    with pytest.raises(InvalidArgument):
        nets.create("bad name!")
    with pytest.raises(Conflict, match="pre-defined"):
        nets.create("host")
    assert [n.name for n in nets.list()] == ["one"]


def test_auto_subnets_do_not_overlap(nets: Networks) -> None:
    made = [nets.create(f"auto{i}") for i in range(3)]
    subnets = [ipaddress.IPv4Network(n.subnet) for n in made]
    for i, a in enumerate(subnets):
        for b in subnets[i + 1 :]:
            assert not a.overlaps(b)


def test_remove_with_endpoints_refused_then_prune(nets: Networks, make_netns: NetnsFactory) -> None:
    net = nets.create("busy", subnet=random_subnet())
    nets.create("idle", subnet=random_subnet())
    c = cid()
    nets.connect("busy", c, make_netns(), container_name="c")
    with pytest.raises(Conflict, match="has active endpoints"):
        nets.remove("busy")
    assert nets.prune() == ["idle"]
    nets.release_container(c)
    assert bridge.link_exists(net.bridge)
    nets.remove(net.id[:10])  # by ID prefix
    assert not bridge.link_exists(net.bridge)
    assert net.id[:12] not in ruleset()


CONNECT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from portique.network.networks import Networks
    root, run, net, cid, ns = sys.argv[1:6]
    n = Networks(Path(root), run_root=Path(run), dns_upstreams=[])
    ep = n.connect(net, cid, Path(ns), container_name="c" + cid[:6])
    print(json.dumps({"ip": ep.ip, "cid": cid}))
    """
)


def test_ipam_never_hands_out_an_address_twice_under_20_concurrent_connects(
    nets: Networks, make_netns: NetnsFactory
) -> None:
    net = nets.create("busy", subnet=random_subnet())
    nets.close()
    jobs = []
    for _ in range(20):
        ns, c = make_netns(), cid()
        args = [str(nets.root), str(nets.run_dir.parent), "busy", c, str(ns)]
        jobs.append(
            subprocess.Popen(
                [sys.executable, "-c", CONNECT_SCRIPT, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for p in jobs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    ips = [r["ip"] for r in results]
    assert len(set(ips)) == 20
    assert sorted(ep.ip for ep in nets.network_endpoints("busy")) == sorted(ips)
    assert net.gateway not in ips
    assert len(_our_veths(nets)) == 20


def test_50_endpoints_connected_and_released_leave_nothing(
    nets: Networks, make_netns: NetnsFactory
) -> None:
    net = nets.create("churn", subnet=random_subnet())
    ids = [cid() for _ in range(50)]
    for c in ids:
        nets.connect("churn", c, make_netns(), container_name="c" + c[:8], aliases=["x"])
    nets.publish(ids[0], [])  # nothing to publish: no-op
    assert len(_our_veths(nets)) == 50
    assert len(dnsserver.running(nets.run_dir)) == 1
    for c in ids:
        nets.release_container(c)
    nets.release_container(ids[0])  # idempotent
    assert _our_veths(nets) == []
    assert nets.conn.execute("SELECT COUNT(*) FROM endpoints").fetchone()[0] == 0
    assert nets.conn.execute("SELECT COUNT(*) FROM ports").fetchone()[0] == 0
    assert dnsserver.running(nets.run_dir) == {}
    nets.remove("churn")
    assert not bridge.link_exists(net.bridge)
    assert f"network {net.id[:12]}" not in ruleset()


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from portique.network import bridge
    from portique.network.networks import Networks
    root, run, what, net, cid, ns = sys.argv[1:7]
    n = Networks(Path(root), run_root=Path(run), dns_upstreams=[])

    def die(*a, **kw):
        os.kill(os.getpid(), signal.SIGKILL)

    if what == "connect":
        real = bridge.add_veth
        def add_then_die(**kw):
            real(**kw)
            die()
        bridge.add_veth = add_then_die
        n.connect(net, cid, Path(ns), container_name="crashy")
    elif what == "remove":
        bridge.delete_link = die
        n.remove(net)
    """
)


def _crash(nets: Networks, what: str, net: str, c: str = "", ns: str = "") -> None:
    args = [str(nets.root), str(nets.run_dir.parent), what, net, c, ns]
    p = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, *args], timeout=60, check=False)
    assert p.returncode == -9


def test_repair_cleans_up_after_crashes(nets: Networks, make_netns: NetnsFactory) -> None:
    nets.create("app", subnet=random_subnet())
    doomed = nets.create("doomed", subnet=random_subnet())
    # 1. Killed mid-connect: the veth exists, the endpoint row says "creating".
    ns1, c1 = make_netns(), cid()
    _crash(nets, "connect", "app", c1, str(ns1))
    assert len(_our_veths(nets)) == 1
    row = nets.conn.execute("SELECT state FROM endpoints WHERE container_id = ?", (c1,)).fetchone()
    assert row["state"] == "creating"
    # 2. A container whose netns vanished (engine crashed, container died): its veth
    #    died with the netns, but its lease, port and resolver are still there.
    ns2, c2 = make_netns(), cid()
    nets.connect("app", c2, ns2, container_name="gone")
    port = free_port()
    nets.publish(c2, parse_port_spec(f"{port}:80"))
    assert len(dnsserver.running(nets.run_dir)) == 1
    subprocess.run(["ip", "netns", "del", ns2.name], check=True)
    # 3. Killed mid-remove: the network row is gone, its bridge is not.
    nets.connect("doomed", cid(), make_netns(), container_name="tmp")
    for ep in nets.network_endpoints("doomed"):
        nets.release_container(ep.container_id)
    _crash(nets, "remove", "doomed")
    assert bridge.link_exists(doomed.bridge)

    # A fresh engine process repairs everything, and a young "creating" row is spared.
    report = nets.repair(creating_grace=3600)
    assert report.endpoints == [f"app/{c2[:12]}"]
    assert doomed.bridge in report.bridges  # (with any orphan of a deleted root)
    assert report.ports == 0  # went with the endpoint
    assert len(_our_veths(nets)) == 1
    report = nets.repair(creating_grace=0)
    assert report.endpoints == [f"app/{c1[:12]}"]
    assert nets.conn.execute("SELECT COUNT(*) FROM endpoints").fetchone()[0] == 0
    assert nets.conn.execute("SELECT COUNT(*) FROM ports").fetchone()[0] == 0
    assert _our_veths(nets) == []
    assert not bridge.link_exists(doomed.bridge)
    assert dnsserver.running(nets.run_dir) == {}
    assert f"dport {port} " not in ruleset()
    # Repair is idempotent.
    again = nets.repair(creating_grace=0)
    assert (again.endpoints, again.links, again.bridges, again.dns) == ([], [], [], [])


def test_container_process_netns_and_its_death(nets: Networks, tmp_path: Path) -> None:
    """As the engine wires containers: the netns is /proc/PID/ns/net of the container's
    process (no bind mount). When the process dies the netns and its veth go with it;
    repair() then releases the lease, the port and the resolver."""
    nets.create("app", subnet=random_subnet())
    site = tmp_path / "www"
    site.mkdir()
    (site / "index.html").write_text("from-a-process\n")
    proc = subprocess.Popen(
        ["unshare", "--net", "/bin/busybox", "httpd", "-f", "-p", "80", "-h", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        c = cid()
        netns = Path(f"/proc/{proc.pid}/ns/net")
        cn = nets.setup_container(
            c,
            netns,
            container_name="proc",
            networks=[NetworkRequest("app")],
            ports=parse_port_spec("127.0.0.1::80"),
        )
        port = cn.ports[0].host_port
        deadline = time.monotonic() + 10
        body = ""
        while time.monotonic() < deadline and "from-a-process" not in body:
            with contextlib.suppress(OSError):
                body = http_get_host("127.0.0.1", port)
            time.sleep(0.05)
        assert "from-a-process" in body
    finally:
        proc.kill()
        proc.wait(timeout=10)
    # The veth dies with the namespace (asynchronously in the kernel: wait, bounded).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _our_veths(nets):
        time.sleep(0.05)
    assert _our_veths(nets) == []
    report = nets.repair()
    assert report.endpoints == [f"app/{c[:12]}"]
    assert nets.ports(c) == []
    assert dnsserver.running(nets.run_dir) == {}
    assert f"dport {port} " not in ruleset()


def test_a_deleted_engine_root_leaves_nothing_running(
    nets: Networks, make_netns: NetnsFactory, tmp_path: Path
) -> None:
    """A root deleted without cleanup (a test's tmp dir): its resolver exits by itself,
    and any other root's repair() removes its bridge."""
    gone = Networks(tmp_path / "gone-root", run_root=tmp_path / "gone-run", dns_upstreams=[])
    net = gone.create("doomed", subnet=random_subnet())
    try:
        c = cid()
        gone.connect("doomed", c, make_netns(), container_name="x")
        gone.release_container(c)  # the veth goes; the bridge stays until `network rm`
        gone.connect("doomed", cid(), make_netns(), container_name="y")
        (pid,) = dnsserver.running(gone.run_dir).values()
        gone.close()
        shutil.rmtree(tmp_path / "gone-root")
        deadline = time.monotonic() + 20  # the resolver checks every 5 s
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists()
        nets.repair()
        # Any engine's repair reclaims it (another `portique ps` on this machine may
        # get there first): the bridge is gone, by this repair or an earlier one.
        assert not bridge.link_exists(net.bridge)
    finally:
        gone.flush_firewall()
        if bridge.link_exists(net.bridge):
            bridge.delete_link(net.bridge)


def test_destroy_removes_everything_of_the_root(nets: Networks, make_netns: NetnsFactory) -> None:
    nets.create("a", subnet=random_subnet())
    c = cid()
    nets.setup_container(
        c,
        make_netns(),
        container_name="x",
        networks=[NetworkRequest("a"), NetworkRequest("bridge")],
        ports=parse_port_spec(f"127.0.0.1:{free_port()}:80"),
    )
    assert table_exists(nets)
    nets.destroy()
    assert nets.list() == []
    assert nets.endpoints(c) == []
    assert [lk.name for lk in bridge.host_links() if nets.owns(lk.alias)] == []
    assert _our_veths(nets) == []
    assert dnsserver.running(nets.run_dir) == {}
    assert not table_exists(nets)


def test_two_engine_roots_never_share_a_subnet(
    nets: Networks, make_netns: NetnsFactory, tmp_path: Path
) -> None:
    other = Networks(tmp_path / "other-root", run_root=tmp_path / "other-run", dns_upstreams=[])
    try:
        subnet = random_subnet()
        nets.create("mine", subnet=subnet)
        other.create("theirs", subnet=subnet)  # no bridge yet: nothing routed to see
        nets.connect("mine", cid(), make_netns(), container_name="a")
        # Now the subnet is routed on "mine"'s bridge: the other root refuses to use it...
        with pytest.raises(Conflict, match="overlaps with host route"):
            other.connect("theirs", cid(), make_netns(), container_name="b")
        assert other.network_endpoints("theirs") == []
        # ...and refuses to create it again.
        other.remove("theirs")
        with pytest.raises(Conflict, match="overlaps with host route"):
            other.create("again", subnet=subnet)
    finally:
        other.destroy()
        other.close()
