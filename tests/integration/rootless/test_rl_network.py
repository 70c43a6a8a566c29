"""A rootless engine's networks: none (loopback only), host (the host's
interfaces), and the default one through slirp4netns: outbound connections to
servers on the host's loopback (10.0.2.2), `-p HOSTPORT:PORT` from 1024 up
reached from the host, a lower port refused naming the sysctl, networks the
engine cannot make refused in one line."""

from __future__ import annotations

import os
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support.registry import free_port
from support.rootless_cli import UserPortique, wait_for


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the host's loopback\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_none_has_loopback_only(upq: UserPortique) -> None:
    out = upq.ok("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
    assert out.split() == ["lo"]
    out = upq.ok("run", "--rm", "--network", "none", "busybox", "ping", "-c1", "-W2", "127.0.0.1")
    assert "1 packets received" in out


def test_host_sees_the_hosts_interfaces(upq: UserPortique) -> None:
    before = set(os.listdir("/sys/class/net"))
    out = set(upq.ok("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net").split())
    after = set(os.listdir("/sys/class/net"))  # other engines may add or drop veths meanwhile
    assert before & after <= out <= before | after
    assert "lo" in out


def test_default_network_reaches_the_hosts_loopback(
    upq: UserPortique, loopback_server: int
) -> None:
    out = upq.ok(
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        f"ip -4 -o addr show tap0; cat /etc/resolv.conf; wget -qO- http://10.0.2.2:{loopback_server}/",
    )
    assert "10.0.2.100/24" in out
    assert "nameserver 10.0.2.3" in out
    assert out.endswith("hello from the host's loopback\n")


def test_published_port_is_reached_from_the_host(upq: UserPortique) -> None:
    port = free_port()
    cid = upq.ok(
        "run",
        "-d",
        "-p",
        f"127.0.0.1:{port}:80",
        "busybox",
        "sh",
        "-c",
        "mkdir /w && echo served > /w/index.html && exec httpd -f -p 80 -h /w",
    ).strip()
    try:

        def answered() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    return bool(r.read() == b"served\n")
            except OSError:
                return False

        assert wait_for(answered, timeout=60)
        assert upq.ok("port", cid).strip() == f"80/tcp -> 127.0.0.1:{port}"
        slirp = (upq.runroot / "containers" / cid / "slirp.pid").read_text().split()[0]
        assert os.path.exists(f"/proc/{slirp}")
    finally:
        upq.ok("rm", "-f", cid)
    # its slirp4netns went with it
    assert not (upq.runroot / "containers" / cid).exists()
    assert wait_for(lambda: not answered(), timeout=30)


def test_low_host_port_is_one_clear_error(upq: UserPortique) -> None:
    before = upq.ok("ps", "-aq")
    p = upq("run", "--rm", "-p", "80:80", "busybox", "true")
    assert p.returncode == 125
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "net.ipv4.ip_unprivileged_port_start" in p.stderr
    assert upq.ok("ps", "-aq") == before


def test_user_network_resolves_names_reaches_out_and_publishes(
    upq: UserPortique, loopback_server: int
) -> None:
    upq.ok("network", "create", "rlnet")
    port = free_port()
    db = upq.ok(
        "run",
        "-d",
        "--network",
        "rlnet",
        "--name",
        "rldb",
        "-p",
        f"{port}:80",
        "busybox",
        "sh",
        "-c",
        "mkdir /w && echo db-here > /w/index.html && exec httpd -f -p 80 -h /w",
    ).strip()
    try:
        out = upq.ok(
            "run",
            "--rm",
            "--network",
            "rlnet",
            "busybox",
            "sh",
            "-c",
            f"wget -qO- http://rldb/ && wget -qO- http://10.0.2.2:{loopback_server}/",
        )
        assert out == "db-here\nhello from the host's loopback\n"

        def answered() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    return bool(r.read() == b"db-here\n")
            except OSError:
                return False

        assert wait_for(answered, timeout=60)
        # Its bridge and veths live in the engine's namespace, not the host's.
        assert not [n for n in os.listdir("/sys/class/net") if n.startswith("pq") and db[:6] in n]
        assert (upq.runroot / "netns" / "engine").exists()
    finally:
        upq.ok("rm", "-f", db)
    assert wait_for(lambda: not answered(), timeout=30)
    upq.ok("network", "rm", "rlnet")


def test_the_default_network_joins_no_other(upq: UserPortique) -> None:
    upq.ok("network", "create", "rlother")
    try:
        p = upq("create", "--network", "bridge", "--network", "rlother", "busybox", "true")
        assert p.returncode == 125, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert "slirp4netns" in p.stderr
    finally:
        upq.ok("network", "rm", "rlother")
