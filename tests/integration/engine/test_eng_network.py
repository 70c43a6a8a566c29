"""The default bridge network and published ports, through the network layer."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from support.engine_cli import Portique


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_default_bridge_gives_eth0_and_hosts(pq: Portique) -> None:
    out = pq.ok(
        "run",
        "--rm",
        "--name",
        "br1",
        "busybox",
        "sh",
        "-c",
        "ip -o -4 addr show eth0; cat /etc/hosts",
    )
    first, _, hosts = out.partition("\n")
    ip = first.split("inet ")[1].split("/")[0]
    # The network layer picks a free private subnet (172.17/16 when free).
    assert ip.split(".")[0] in ("10", "172", "192")
    assert f"{ip}\tbr1" in hosts


def test_published_port_reaches_the_container(pq: Portique) -> None:
    port = _free_port()
    cid = pq.ok(
        "run",
        "-d",
        "-p",
        f"127.0.0.1:{port}:80",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 80 -h /www",
    ).strip()
    body = ""
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                body = resp.read().decode()
            break
        except OSError:
            time.sleep(0.1)
    assert body == "hello-from-httpd\n"
    assert f"127.0.0.1:{port}->80/tcp" in pq.ok("ps", "--filter", f"id={cid}")
    doc = json.loads(pq.ok("inspect", cid))[0]
    ns = doc["NetworkSettings"]
    assert ns["IPAddress"]
    assert ns["Networks"]["bridge"]["IPAddress"] == ns["IPAddress"]
    assert ns["Ports"]["80/tcp"][0]["HostPort"] == str(port)
    pq.ok("rm", "-f", cid)
    # The port is released with the container.
    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", port)) != 0
