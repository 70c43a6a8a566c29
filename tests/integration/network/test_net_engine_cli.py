"""`portique network connect/disconnect` on real engine containers (`portique run -d`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.network import dnsserver
from portique.network.networks import Networks
from support.net_helpers import free_port, http_get_host, random_subnet, teardown_networks
from support.rootfs import make_busybox_rootfs


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[dict[str, str], Networks]]:
    env = dict(os.environ)
    env["PORTIQUE_ROOT"] = str(tmp_path / "root")
    env["PORTIQUE_RUNROOT"] = str(tmp_path / "run")
    # The embedded DNS relays foreign names nowhere: no query may leave the machine.
    env["PORTIQUE_DNS_UPSTREAMS"] = ""
    rootfs = make_busybox_rootfs(tmp_path / "busybox")
    (rootfs / "www").mkdir()
    (rootfs / "www/index.html").write_text("hello-from-engine\n")
    tar = tmp_path / "busybox.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(rootfs, arcname=".")
    pq(env, "import", "--change", 'CMD ["/bin/sh"]', str(tar), "busybox:latest", check=True)
    nets = Networks(tmp_path / "root", run_root=tmp_path / "run")
    yield env, nets
    ps = pq(env, "ps", "-aq", "--no-trunc")
    for c in ps.stdout.split():
        pq(env, "rm", "-f", c)
    teardown_networks(nets)


def pq(env: dict[str, str], *argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "portique", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_connect_running_containers_to_a_network(
    engine: tuple[dict[str, str], Networks],
) -> None:
    env, nets = engine
    pq(env, "network", "create", "--subnet", random_subnet(), "app", check=True)
    gw = nets.inspect("app").gateway
    pq(env, "run", "-d", "--name", "web", "--network", "none", "busybox",
       "httpd", "-f", "-p", "80", "-h", "/www", check=True)  # fmt: skip
    pq(env, "run", "-d", "--name", "cli", "--network", "none", "busybox",
       "sleep", "300", check=True)  # fmt: skip
    pq(env, "network", "connect", "--alias", "www", "app", "web", check=True)
    pq(env, "network", "connect", "app", "cli", check=True)

    (dns_pid,) = dnsserver.running(nets.run_dir).values()
    assert b"--upstream" not in Path(f"/proc/{dns_pid}/cmdline").read_bytes()
    eps = {e.container_name: e for e in nets.network_endpoints("app")}
    ep = eps["web"]
    assert ep.aliases == ("www",)
    # The host reaches the container on its bridge address.
    assert "hello-from-engine" in http_get_host(ep.ip, 80)
    # Inside the other container: its eth0, and the alias through the embedded DNS.
    addr = pq(env, "exec", "cli", "ip", "-o", "-4", "addr", "show", "eth0", check=True).stdout
    assert f"{eps['cli'].ip}/24" in addr
    look = pq(env, "exec", "cli", "nslookup", "www", gw, check=True).stdout
    assert ep.ip in look

    r = pq(env, "network", "connect", "app", "web")
    assert r.returncode == 125
    assert r.stderr == "portique: container web is already attached to network app\n"
    r = pq(env, "network", "rm", "app")
    assert r.returncode == 125
    assert "has active endpoints" in r.stderr

    pq(env, "network", "disconnect", "app", "web", check=True)
    pq(env, "network", "disconnect", "app", "cli", check=True)
    assert nets.network_endpoints("app") == []
    link = pq(env, "exec", "web", "ip", "-o", "link", check=True).stdout
    assert "eth0" not in link
    pq(env, "network", "rm", "app", check=True)


def test_issue_scenario_names_and_published_port(
    engine: tuple[dict[str, str], Networks],
) -> None:
    """The issue's acceptance run: a user network, a server by name, -p to the host."""
    env, nets = engine
    port = free_port()
    pq(env, "network", "create", "app", check=True)
    pq(env, "run", "-d", "--network", "app", "--name", "db", "-p", f"127.0.0.1:{port}:80",
       "busybox", "httpd", "-f", "-p", "80", "-h", "/www", check=True)  # fmt: skip
    (ep,) = nets.network_endpoints("app")
    deadline = time.monotonic() + 10
    body = ""
    while time.monotonic() < deadline and "hello-from-engine" not in body:
        with contextlib.suppress(OSError):
            body = http_get_host("127.0.0.1", port)
        time.sleep(0.05)
    assert "hello-from-engine" in body
    # Another container on the network reaches it by name (libc-free: busybox nc).
    r = pq(env, "run", "--rm", "--network", "app", "busybox", "sh", "-c",
           'printf "GET /index.html HTTP/1.0\\r\\n\\r\\n" | nc db 80', check=True)  # fmt: skip
    assert "hello-from-engine" in r.stdout
    assert pq(env, "port", "db", "80").stdout == f"127.0.0.1:{port}\n"
    assert f"127.0.0.1:{port}->80/tcp" in pq(env, "ps", check=True).stdout
    pq(env, "rm", "-f", "db", check=True)
    assert nets.network_endpoints("app") == []
    assert nets.ports(ep.container_id) == []
