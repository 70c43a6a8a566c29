"""Bridges and container interfaces ignore router advertisements (CVE-2020-13401)."""

from __future__ import annotations

from pathlib import Path

from portique.network import bridge


def test_accept_ra_is_turned_off(tmp_path: Path) -> None:
    conf = tmp_path / "net/ipv6/conf/pq0-1234"
    conf.mkdir(parents=True)
    (conf / "accept_ra").write_text("1\n")
    bridge.ignore_router_advertisements("pq0-1234", tmp_path)
    assert (conf / "accept_ra").read_text() == "0\n"


def test_a_host_without_ipv6_is_left_alone(tmp_path: Path) -> None:
    bridge.ignore_router_advertisements("pq0-1234", tmp_path)
    assert list(tmp_path.iterdir()) == []
