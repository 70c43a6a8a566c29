"""`--format` on real objects: ps, inspect -f and version, with the issue's templates
(a container with a published port on a user network)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from portique import __version__


def _free_subnet() -> str:
    """A /24 in 10.128.0.0/9 not routed on this host (other roots may hold 172.x)."""
    import ipaddress
    import random

    from portique.network import bridge

    routed = [n for n, _ in bridge.host_routes()]
    for _ in range(200):
        cand = ipaddress.IPv4Network(f"10.{random.randint(128, 254)}.{random.randint(0, 255)}.0/24")
        if not any(cand.overlaps(r) for r in routed):
            return str(cand)
    raise RuntimeError("no free test subnet")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def web(pq: Any) -> Iterator[tuple[str, int]]:
    port = _free_port()
    pq.ok("network", "create", "--subnet", _free_subnet(), "fmt-net")
    cid = pq.ok(
        "run",
        "-d",
        "--name",
        "fmtweb",
        "--network",
        "fmt-net",
        "-p",
        f"127.0.0.1:{port}:80",
        "--label",
        "com.example.role=web",
        "busybox",
        "sleep",
        "600",
    ).strip()
    yield cid, port
    pq("rm", "-f", cid, timeout=120)
    pq("network", "rm", "fmt-net")


def test_inspect_index_of_ports_and_networks(pq: Any, web: tuple[str, int]) -> None:
    cid, port = web
    host_port = pq.inspect(cid, '{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}')
    assert host_port == str(port)
    ip = pq.inspect(cid, '{{(index .NetworkSettings.Networks "fmt-net").IPAddress}}')
    inside = pq.ok("exec", cid, "ip", "-o", "-4", "addr", "show", "eth0")
    assert f"inet {ip}/" in inside
    # range over the networks map, with variables and printf's width
    line = pq.inspect(
        cid,
        '{{range $n, $e := .NetworkSettings.Networks}}{{printf "%-8s|" $n}}{{$e.IPAddress}}{{end}}',
    )
    assert line == f"fmt-net |{ip}"
    assert pq.inspect(cid, "{{.Config.Labels.nope}}") == "<no value>"
    assert (
        pq.inspect(cid, '{{index .Config.Labels "com.example.role"}} {{.State.Running}}')
        == "web true"
    )
    assert (
        pq.inspect(cid, '{{if eq .State.Status "running" "paused"}}up{{end}} {{len .Name}}')
        == "up 7"
    )


def test_inspect_missing_field_is_an_error(pq: Any, web: tuple[str, int]) -> None:
    cid, _ = web
    proc = pq("inspect", "-f", "{{.Name}} {{.Nope}}", cid)
    assert proc.returncode == 1
    assert proc.stdout == "\n"
    assert 'executing "" at <.Nope>: map has no entry for key "Nope"' in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    proc = pq("inspect", "-f", "{{.Name", cid)
    assert proc.returncode == 64
    assert "template parsing error: template: :1: unclosed action" in proc.stderr


def test_ps_format_label_method_and_errors(pq: Any, web: tuple[str, int]) -> None:
    cid, port = web
    out = pq.ok(
        "ps",
        "--filter",
        "name=fmtweb",
        "--format",
        '{{.Names}} {{.Label "com.example.role"}} {{.ID}}',
    )
    assert out == f"fmtweb web {cid[:12]}\n"
    table = pq.ok(
        "ps",
        "--filter",
        "name=fmtweb",
        "--format",
        r'table {{.Names}}\t{{.Label "com.example.role"}}\t{{.Ports}}',
    )
    head, row = table.splitlines()
    assert head.split() == ["NAMES", "role", "PORTS"]
    assert row.startswith("fmtweb")
    assert f"127.0.0.1:{port}->80/tcp" in row
    assert pq.ok("ps", "--filter", "name=fmtweb", "--format", "{{.LocalVolumes}}") == "0\n"
    proc = pq("ps", "--format", "{{.Nope}}")
    assert proc.returncode == 1
    assert "can't evaluate field Nope in type *formatter.ContainerContext" in proc.stderr
    assert proc.stdout == ""
    proc = pq("ps", "--format", '{{.Names "x"}}')
    assert proc.returncode == 1
    assert "wrong number of args for Names: want 0 got 1" in proc.stderr


def test_version_format(pq: Any) -> None:
    assert pq.ok("version", "--format", "{{.Client.Version}}") == f"{__version__}\n"
    assert (
        pq.ok("version", "-f", "{{.Server.Version}} {{.Client.APIVersion}}").split()[0]
        == __version__
    )
    proc = pq("version", "--format", "{{.Client.Nope}}")
    assert proc.returncode == 1
    assert "can't evaluate field Nope in type system.clientVersion" in proc.stderr
    assert pq("version", "--format", "{{").returncode == 64
