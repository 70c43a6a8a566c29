"""`run` network flags end to end: --network-alias, --ip, several --network, --add-host,
--dns*, --hostname, -P, `port`, `container:NAME`, and `network connect` of a stopped
container (applied at its start)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from portique.network import bridge
from portique.network.networks import Networks
from support.net_helpers import http_get_host, random_subnet, teardown_networks
from support.rootfs import make_busybox_rootfs

Engine = tuple[dict[str, str], Networks]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    base = tmp_path_factory.mktemp("netflags")
    env = dict(os.environ)
    env["PORTIQUE_ROOT"] = str(base / "root")
    env["PORTIQUE_RUNROOT"] = str(base / "run")
    env["PORTIQUE_DNS_UPSTREAMS"] = ""  # no query leaves the machine
    rootfs = make_busybox_rootfs(base / "busybox")
    (rootfs / "www").mkdir()
    (rootfs / "www/index.html").write_text("hello-flags\n")
    tar = base / "busybox.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(rootfs, arcname=".")
    pq(env, "import", "--change", 'CMD ["/bin/sh"]', "--change", "EXPOSE 80 5353/udp",
       str(tar), "busybox:latest", check=True)  # fmt: skip
    nets = Networks(base / "root", run_root=base / "run")
    yield env, nets
    for c in pq(env, "ps", "-aq", "--no-trunc").stdout.split():
        pq(env, "rm", "-f", c)
    teardown_networks(nets)
    assert [lk.name for lk in bridge.host_links() if nets.owns(lk.alias)] == []


@pytest.fixture
def clean(engine: Engine) -> Iterator[Engine]:
    env, nets = engine
    yield engine
    for c in pq(env, "ps", "-aq", "--no-trunc").stdout.split():
        pq(env, "rm", "-f", c)
    for n in nets.list():
        if n.name != "bridge":
            pq(env, "network", "rm", n.name)


def pq(env: dict[str, str], *argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "portique", *argv], env=env,
                       capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    if check:
        assert r.returncode == 0, r.stderr
    return r


def released(nets: Networks, network: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while nets.network_endpoints(network) and time.monotonic() < deadline:
        time.sleep(0.05)
    return nets.network_endpoints(network) == []


def inspect(env: dict[str, str], name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(pq(env, "inspect", name, check=True).stdout)[0]
    return doc


def test_alias_and_ip_on_a_user_network(clean: Engine) -> None:
    env, nets = clean
    subnet = random_subnet()
    pq(env, "network", "create", "--subnet", subnet, "app", check=True)
    ip = subnet.rsplit(".", 2)[0] + ".1.77" if subnet.endswith("/16") else None
    ip = ip or str(list(__import__("ipaddress").ip_network(subnet).hosts())[76])
    pq(env, "run", "-d", "--name", "web", "--network", "app", "--network-alias", "www",
       "--network-alias", "front", "--ip", ip, "busybox", "httpd", "-f", "-p", "80", "-h", "/www",
       check=True)  # fmt: skip
    (ep,) = nets.network_endpoints("app")
    assert ep.ip == ip
    assert set(ep.aliases) == {"www", "front"}
    settings = inspect(env, "web")["NetworkSettings"]["Networks"]["app"]
    assert settings["IPAddress"] == ip
    gw = nets.inspect("app").gateway
    for name in ("www", "front", "web"):
        r = pq(env, "run", "--rm", "--network", "app", "busybox", "nslookup", name, gw)
        assert ip in r.stdout, (name, r.stdout, r.stderr)
    # The address is taken: a second container asking for it is refused, and left created.
    r = pq(env, "run", "--rm", "--network", "app", "--ip", ip, "busybox", "true")
    assert r.returncode == 125
    assert ip in r.stderr
    # Aliases and --ip make no sense on the default bridge (as in Docker).
    r = pq(env, "create", "--network-alias", "x", "busybox")
    assert r.returncode == 125
    assert "user-defined networks" in r.stderr


def test_several_networks(clean: Engine) -> None:
    env, nets = clean
    pq(env, "network", "create", "--subnet", random_subnet(), "one", check=True)
    pq(env, "network", "create", "--subnet", random_subnet(), "two", check=True)
    r = pq(env, "run", "--rm", "--name", "multi", "--network", "one", "--network", "two",
           "busybox", "sh", "-c", "ip -o -4 addr show; ip route", check=True)  # fmt: skip
    a = nets.inspect("one")
    b = nets.inspect("two")
    assert "eth0" in r.stdout
    assert "eth1" in r.stdout
    assert f"default via {a.gateway} dev eth0" in r.stdout
    # --rm releases both endpoints (the monitor does, just after the exit).
    assert released(nets, "one")
    assert released(nets, "two")
    assert b.subnet.split("/")[0].rsplit(".", 1)[0] in r.stdout


def test_hosts_and_resolv_conf_flags(clean: Engine) -> None:
    env, nets = clean
    for mode in ("bridge", "none"):
        r = pq(env, "run", "--rm", "--network", mode, "--hostname", "box1",
               "--add-host", "db.local:10.9.8.7", "--add-host", "gw:host-gateway",
               "--dns", "192.0.2.53", "--dns-search", "corp.example", "--dns-option", "ndots:2",
               "busybox", "sh", "-c", "hostname; cat /etc/hosts; echo ---; cat /etc/resolv.conf",
               check=True)  # fmt: skip
        name, rest = r.stdout.split("\n", 1)
        hosts, resolv = rest.split("---\n")
        assert name == "box1"
        assert "10.9.8.7\tdb.local" in hosts
        assert "\tbox1" in hosts
        if mode == "bridge":
            gw = nets.inspect("bridge").gateway
            assert f"{gw}\tgw" in hosts
        else:
            assert "127.0.0.1\tgw" in hosts
        assert "nameserver 192.0.2.53" in resolv
        assert "search corp.example" in resolv
        assert "options ndots:2" in resolv
    r = pq(env, "create", "--add-host", "nocolon", "busybox")
    assert (r.returncode, r.stderr.count("\n")) == (125, 1)
    assert "--add-host" in r.stderr
    r = pq(env, "create", "--dns", "not-an-ip", "busybox")
    assert (r.returncode, r.stderr.count("\n")) == (125, 1)
    assert pq(env, "ps", "-aq").stdout == ""


def test_publish_all_and_port(clean: Engine) -> None:
    env, _ = clean
    pq(env, "run", "-d", "--name", "pub", "-P", "busybox",
       "httpd", "-f", "-p", "80", "-h", "/www", check=True)  # fmt: skip
    out = pq(env, "port", "pub", check=True).stdout.splitlines()
    assert len(out) == 2, out
    by_port = {line.split(" -> ")[0]: line.split(" -> ")[1] for line in out}
    assert set(by_port) == {"80/tcp", "5353/udp"}
    host_port = int(by_port["80/tcp"].rsplit(":", 1)[1])
    assert host_port > 0
    assert pq(env, "port", "pub", "80").stdout.strip().endswith(f":{host_port}")
    body = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "hello-flags" not in body:
        with contextlib.suppress(OSError):
            body = http_get_host("127.0.0.1", host_port)
        time.sleep(0.05)
    assert "hello-flags" in body
    assert "->80/tcp" in pq(env, "ps", check=True).stdout
    r = pq(env, "port", "pub", "81")
    assert r.returncode == 1


def test_container_network_mode_shares_the_namespace(clean: Engine) -> None:
    env, nets = clean
    pq(env, "run", "-d", "--name", "owner", "busybox",
       "httpd", "-f", "-p", "80", "-h", "/www", check=True)  # fmt: skip
    (ep,) = nets.network_endpoints("bridge")
    r = pq(env, "run", "--rm", "--network", "container:owner", "busybox", "sh", "-c",
           "ip -o -4 addr show eth0; wget -qO- http://127.0.0.1/", check=True)  # fmt: skip
    assert f"{ep.ip}/" in r.stdout
    assert "hello-flags" in r.stdout
    # It made no endpoint of its own.
    assert [e.container_name for e in nets.network_endpoints("bridge")] == ["owner"]
    r = pq(env, "run", "--rm", "--network", "container:owner", "-p", "8080:80", "busybox", "true")
    assert r.returncode == 125
    assert "conflicting options" in r.stderr
    r = pq(env, "run", "--rm", "--network", "container:nosuch", "busybox", "true")
    assert r.returncode == 125
    assert "nosuch" in r.stderr
    pq(env, "stop", "-t", "0", "owner", check=True)
    r = pq(env, "run", "--rm", "--network", "container:owner", "busybox", "true")
    assert r.returncode == 125
    assert "not running" in r.stderr


def test_connect_a_stopped_container_applies_at_start(clean: Engine) -> None:
    env, nets = clean
    pq(env, "network", "create", "--subnet", random_subnet(), "later", check=True)
    pq(env, "create", "--name", "sleeper", "busybox", "sleep", "300", check=True)
    pq(env, "network", "connect", "--alias", "zz", "later", "sleeper", check=True)
    assert nets.network_endpoints("later") == []  # nothing wired before it runs
    r = pq(env, "network", "connect", "later", "sleeper")
    assert r.returncode == 125
    assert "already attached" in r.stderr
    pq(env, "start", "sleeper", check=True)
    (ep,) = nets.network_endpoints("later")
    assert ep.aliases == ("zz",)
    addr = pq(env, "exec", "sleeper", "ip", "-o", "-4", "addr", check=True).stdout
    assert f"{ep.ip}/" in addr
    assert "eth1" in addr  # eth0 is the default bridge's
    assert set(inspect(env, "sleeper")["NetworkSettings"]["Networks"]) == {"bridge", "later"}
    # Stopped, it leaves the network; a restart joins it again; disconnect forgets it.
    pq(env, "stop", "-t", "0", "sleeper", check=True)
    assert released(nets, "later")
    pq(env, "start", "sleeper", check=True)
    assert len(nets.network_endpoints("later")) == 1
    pq(env, "network", "disconnect", "later", "sleeper", check=True)
    pq(env, "restart", "-t", "0", "sleeper", check=True)
    assert nets.network_endpoints("later") == []
    assert len(nets.network_endpoints("bridge")) == 1
