"""Testcontainers (PyPI `testcontainers`) against `portique serve`: start a
container, wait for its log line and for its published port, talk to it,
stop it. Its reaper (Ryuk) is off: it is an image from Docker Hub, which
this host cannot reach, and each test here removes what it started."""

from __future__ import annotations

import json
import urllib.request

import pytest

from support.api_server import ApiServer

pytestmark = pytest.mark.compat


def test_start_wait_for_log_and_port_then_stop(
    srv: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", srv.host)
    monkeypatch.setenv("DOCKER_CONFIG", str(srv.docker_config))
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import (
        CompositeWaitStrategy,
        LogMessageWaitStrategy,
        PortWaitStrategy,
    )

    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)
    script = (
        "mkdir -p /w && echo served-by-busybox > /w/index.html"
        " && echo server-ready && exec httpd -f -p 8080 -h /w"
    )
    container = (
        DockerContainer("busybox")
        .with_command(["sh", "-c", script])
        .with_exposed_ports(8080)
        .waiting_for(
            CompositeWaitStrategy(
                LogMessageWaitStrategy("server-ready").with_startup_timeout(120),
                PortWaitStrategy(8080).with_startup_timeout(120),
            )
        )
    )
    with container as started:
        cid = started.get_container_id()
        host = started.get_container_host_ip()
        port = started.get_exposed_port(8080)
        assert port != 8080 or host != "localhost"
        with urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=30) as resp:
            assert resp.read() == b"served-by-busybox\n"
        running = srv.json("GET", f"/containers/{cid}/json")
        assert running["State"]["Running"] is True
    # stop() removed the container (and its anonymous volumes).
    status, _h, body = srv.request("GET", f"/containers/{cid}/json")
    assert status == 404, body
    assert json.loads(body)["message"] == f"No such container: {cid}"
