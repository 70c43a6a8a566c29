"""repair(): undo what crashes left behind, from facts in the kernel and the database.

Split out of networks.py; `Networks.repair` is the entry point.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from portique import db as pdb
from portique.network import db as ndb

if TYPE_CHECKING:
    from portique.network.networks import Networks, RepairReport


def repair(
    nets: Networks,
    live_containers: Iterable[str] | None,
    creating_grace: float,
    force_firewall: bool,
) -> RepairReport:
    """Undo leftovers of crashes: endpoints stuck "creating", endpoints whose netns is
    gone (their veth died with it) or whose container is not in `live_containers`,
    stray veths on our bridges, bridges of removed networks, resolvers of networks
    without containers, ports without an endpoint. Then re-sync the firewall."""
    from portique.network import bridge, dnsserver
    from portique.network.networks import RepairReport

    report = RepairReport()
    live = set(live_containers) if live_containers is not None else None
    links = {link.name: link for link in bridge.host_links()}
    now = time.time()
    rows = nets.conn.execute("SELECT network_id, container_id, state, created FROM endpoints")
    stale = set()
    for r in rows.fetchall():
        if r["state"] == "creating":
            if now - r["created"] > creating_grace:
                stale.add((r["network_id"], r["container_id"]))
        elif live is not None and r["container_id"] not in live:
            stale.add((r["network_id"], r["container_id"]))
    for ep, state in ndb.endpoints_where(nets.conn, "1", ()):
        if state == "active" and ep.host_veth not in links:
            stale.add((ep.network_id, ep.container_id))
    for ep, _ in ndb.endpoints_where(nets.conn, "1", ()):
        if (ep.network_id, ep.container_id) in stale:
            nets._drop_endpoint(ep)
            report.endpoints.append(f"{ep.network}/{ep.container_id[:12]}")
    records = nets.list()
    our_bridges = {n.bridge for n in records}
    known_veths = {r[0] for r in nets.conn.execute("SELECT host_veth FROM endpoints").fetchall()}
    by_index = {link.index: link for link in links.values()}
    for link in links.values():
        master = by_index.get(link.master) if link.master is not None else None
        if (
            link.kind == "veth"
            and master is not None
            and (master.name in our_bridges or nets.owns(master.alias))
            and link.name not in known_veths
            and bridge.delete_link(link.name)
        ):
            report.links.append(link.name)
    for link in links.values():
        if link.kind != "bridge" or link.name in our_bridges:
            continue
        if (nets.owns(link.alias) or _orphaned(link.alias)) and bridge.delete_link(link.name):
            report.bridges.append(link.name)
    with pdb.transaction(nets.conn) as conn:
        report.ports = conn.execute(
            "DELETE FROM ports WHERE container_id NOT IN"
            " (SELECT container_id FROM endpoints WHERE state = 'active')"
        ).rowcount
    active = {
        r[0][:12]
        for r in nets.conn.execute(
            "SELECT DISTINCT network_id FROM endpoints WHERE state = 'active'"
        ).fetchall()
    }
    for short in dnsserver.recorded(nets.run_dir):
        if short not in active:
            dnsserver.stop(nets.run_dir, short)
            report.dns.append(short)
    for n in records:
        if n.id[:12] in active and n.resolves_names:
            dnsserver.ensure_running(
                nets.run_dir, nets.root / pdb.DB_NAME, n.id, n.gateway,
                nets._upstreams(n), nets.dns_port,
            )  # fmt: skip
    # The digest stamp skips unchanged rulesets; but another tool may have flushed
    # the whole ruleset (`nft flush ruleset`, a firewall reload): look, then heal.
    from portique.network import firewall

    tables = set(firewall.list_tables())
    missing = not {("inet", nets.table), ("ip", f"{nets.table}_nat")} <= tables
    nets.sync_firewall(force=force_firewall or missing)
    return report


def _orphaned(alias: str | None) -> bool:
    """A portique bridge whose engine root directory no longer exists (a deleted test
    root): no engine will ever clean it up but this one. A root that exists without
    a database is left alone: it may be another mount namespace's view."""
    if not alias or not alias.startswith("portique:"):
        return False
    _, sep, root = alias.partition(" ")
    return bool(sep) and root.startswith("/") and not Path(root).exists()
