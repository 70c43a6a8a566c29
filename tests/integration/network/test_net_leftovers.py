"""repair() reclaims the nftables tables and bridges of engine roots deleted uncleaned."""

from __future__ import annotations

import shutil
from pathlib import Path

from portique.network import bridge, firewall
from portique.network.networks import Networks
from support.net_helpers import NetnsFactory, cid, random_subnet, table_exists


def _tables_of(nets: Networks) -> set[tuple[str, str]]:
    return {("inet", nets.table), ("ip", f"{nets.table}_nat")} & set(firewall.list_tables())


def test_repair_drops_the_tables_and_bridge_of_a_deleted_root(
    nets: Networks, make_netns: NetnsFactory, tmp_path: Path
) -> None:
    gone = Networks(tmp_path / "gone-root", run_root=tmp_path / "gone-run", dns_upstreams=[])
    gone.ensure_default()
    gone.connect("bridge", cid(), make_netns(), container_name="x")
    dev = gone.default_bridge
    # A deleted root whose bridge is already gone: its tables' comment names it.
    lone = Networks(tmp_path / "lone-root", run_root=tmp_path / "lone-run", dns_upstreams=[])
    lone.create("l", subnet=random_subnet())
    lone.close()
    shutil.rmtree(tmp_path / "lone-root")
    try:
        assert bridge.link_exists(dev)
        assert _tables_of(gone) == {("inet", gone.table), ("ip", f"{gone.table}_nat")}
        gone.close()
        shutil.rmtree(tmp_path / "gone-root")
        nets.repair()
        # Any engine's repair reclaims them (another `portique ps` on this machine may
        # get there first): what counts is that they are gone afterwards.
        assert not bridge.link_exists(dev)
        assert _tables_of(gone) == set()
        assert _tables_of(lone) == set()
        # This root's own tables are untouched by the reclaim.
        nets.ensure_default()
        nets.connect("bridge", cid(), make_netns(), container_name="y")
        assert table_exists(nets)
        assert not {f"inet {nets.table}", f"ip {nets.table}_nat"} & set(nets.repair().tables)
        assert table_exists(nets)
    finally:
        gone.flush_firewall()
        lone.flush_firewall()
        if bridge.link_exists(dev):
            bridge.delete_link(dev)


def test_repair_keeps_the_tables_of_a_root_whose_bridge_exists(
    nets: Networks, make_netns: NetnsFactory, tmp_path: Path
) -> None:
    other = Networks(tmp_path / "other-root", run_root=tmp_path / "other-run", dns_upstreams=[])
    try:
        other.create("o", subnet=random_subnet())
        # Tables and no bridge yet (`network create` installs the rules): kept.
        assert _tables_of(other) == {("inet", other.table), ("ip", f"{other.table}_nat")}
        assert not {f"inet {other.table}", f"ip {other.table}_nat"} & set(nets.repair().tables)
        other.connect("o", cid(), make_netns(), container_name="x")
        assert not {f"inet {other.table}", f"ip {other.table}_nat"} & set(nets.repair().tables)
        assert _tables_of(other) == {("inet", other.table), ("ip", f"{other.table}_nat")}
    finally:
        other.destroy()
        other.close()
    assert _tables_of(other) == set()
    assert [lk.name for lk in bridge.host_links() if other.owns(lk.alias)] == []
