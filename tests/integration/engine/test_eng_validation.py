"""Hostile names and host names are refused in one line with Docker's exit
code, before anything is created (issue 9, item 7)."""

from __future__ import annotations

import os
from typing import Any

LONG = "a" * 10_000


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr[:500]
    assert "Errno" not in lines[0]
    assert "Traceback" not in lines[0]
    return lines[0]


def _ids(pq: Any) -> list[str]:
    return sorted(pq.ok("ps", "-aq", "--no-trunc").split())


def test_hostname_with_a_newline_is_refused(pq: Any) -> None:
    before = _ids(pq)
    r = pq("run", "--rm", "--hostname", "web\n10.6.6.6 evil", "busybox", "true")
    assert r.returncode == 125
    line = _one_line(r.stderr)
    assert line.startswith("portique: invalid hostname format: web\\n10.6.6.6 evil")
    r = pq("create", "--hostname", "under_score", "busybox", "true")
    assert r.returncode == 125
    assert "invalid hostname format" in _one_line(r.stderr)
    assert _ids(pq) == before
    out = pq.ok("run", "--rm", "--hostname", "web-1.example", "busybox", "cat", "/etc/hostname")
    assert out == "web-1.example\n"


def test_long_volume_name_is_refused_without_host_paths(pq: Any) -> None:
    r = pq("volume", "create", LONG)
    assert r.returncode == 1  # docker volume create
    line = _one_line(r.stderr)
    assert "volume name is too long, names may have at most 255 characters" in line
    assert str(pq.root) not in line
    before = _ids(pq)
    for args in (["-v", f"{LONG}:/data"], ["--mount", f"type=volume,source={LONG},target=/d"]):
        r = pq("run", "--rm", *args, "busybox", "true")
        assert r.returncode == 125
        line = _one_line(r.stderr)
        assert "volume name is too long" in line
        assert str(pq.root) not in line
    r = pq("volume", "create", "bad\nname")
    assert r.returncode == 1
    assert 'includes invalid characters for a local volume name, only "[a-zA-Z0-9]' in (
        _one_line(r.stderr)
    )
    assert _ids(pq) == before
    assert LONG[:255] not in pq.ok("volume", "ls", "-q")


def test_long_or_bad_container_and_network_names(pq: Any) -> None:
    before = _ids(pq)
    for name in (LONG, "web\n", "x"):
        r = pq("create", "--name", name, "busybox", "true")
        assert r.returncode == 125
        assert _one_line(r.stderr).startswith("portique: invalid container name (")
    assert _ids(pq) == before
    for name in ("n" * 300, "net\nwork", "bad name"):
        r = pq("network", "create", name)
        assert r.returncode == 1  # docker network create
        assert _one_line(r.stderr).startswith("portique: invalid network name '")


def test_resolv_conf_lines_cannot_be_injected(pq: Any) -> None:
    before = _ids(pq)
    for flag, value in (
        ("--dns-search", "a.com\nnameserver 10.6.6.6"),
        ("--dns-option", "ndots:1\nnameserver 10.6.6.6"),
        ("--dns", "1.1.1.1\nnameserver 10.6.6.6"),
    ):
        r = pq("run", "--rm", flag, value, "busybox", "cat", "/etc/resolv.conf")
        assert r.returncode == 125, r.stdout
        assert "10.6.6.6" not in r.stdout
        assert "nameserver 10.6.6.6" in _one_line(r.stderr).replace("\\n", " ")
    assert _ids(pq) == before


def test_hosts_lines_cannot_be_injected_through_an_alias(pq: Any) -> None:
    net = f"alias-net-{os.getpid()}"
    pq.ok("network", "create", net)
    try:
        before = _ids(pq)
        alias = "web\n10.6.6.6 evil"
        r = pq("run", "--rm", "--network", net, "--network-alias", alias, "busybox", "true")
        assert r.returncode == 125
        assert _one_line(r.stderr).startswith("portique: invalid network alias 'web\\n10.6.6.6")
        assert _ids(pq) == before
        name = f"alias-ctr-{os.getpid()}"
        pq.ok("create", "--name", name, "busybox", "true")
        r = pq("network", "connect", "--alias", alias, net, name)
        assert r.returncode == 125
        assert "invalid network alias" in _one_line(r.stderr)
        pq.ok("rm", name)
        out = pq.ok("run", "--rm", "--network", net, "--network-alias", "web-1", "busybox",
                    "cat", "/etc/hosts")  # fmt: skip
        assert "10.6.6.6" not in out
        assert " web-1\n" in out
    finally:
        pq("network", "rm", net)
