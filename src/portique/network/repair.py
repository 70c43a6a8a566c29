"""repair(): undo what crashes left behind, from facts in the kernel and the database.

Split out of networks.py; `Networks.repair` is the entry point.
"""

from __future__ import annotations

import contextlib
import re
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
    from portique.network import attachment, bridge, dnsserver, firewall
    from portique.network.networks import RepairReport

    report = RepairReport()
    live = set(live_containers) if live_containers is not None else None
    tables = set(firewall.list_tables())
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
            attachment.drop_endpoint(nets, ep)
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
    orphans: set[str] = set()
    for link in links.values():
        if link.kind != "bridge" or link.name in our_bridges:
            continue
        orphan = _orphaned(link.alias)
        if (nets.owns(link.alias) or orphan) and bridge.delete_link(link.name):
            report.bridges.append(link.name)
            if orphan:
                orphans.add(str(link.alias).split(" ", 1)[0].removeprefix("portique:"))
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
                attachment.upstreams(nets, n), nets.dns_port,
            )  # fmt: skip
    report.tables = _drop_orphan_tables(nets.table, tables, orphans)
    # The digest stamp skips unchanged rulesets; but another tool may have flushed
    # the whole ruleset (`nft flush ruleset`, a firewall reload): look, then heal.
    missing = not {("inet", nets.table), ("ip", f"{nets.table}_nat")} <= tables
    nets.sync_firewall(force=force_firewall or missing)
    return report


def _drop_orphan_tables(own: str, tables: set[tuple[str, str]], orphans: set[str]) -> list[str]:
    """Remove the nftables tables (`portique_<hash>`, `portique_<hash>_nat`) of other
    engine roots that are gone: their comment names a root directory that no longer
    exists (as a bridge's ifalias does), or `orphans` (tags of bridges just removed
    as orphaned) has them. A live root's tables are never touched: a root may have
    tables and no bridge yet (`network create` installs its rules)."""
    from portique.network import firewall

    dropped = []
    for family, name in sorted(tables):
        # Each root has `table inet portique_<hash>` and `table ip portique_<hash>_nat`.
        tag = name.removesuffix("_nat") if family == "ip" else name
        if family == "ip" and tag == name:
            continue
        if not _FOREIGN_TABLE.fullmatch(tag) or tag == own:
            continue
        owner = firewall.table_owner(family, name)
        if tag in orphans or (owner is not None and _orphaned(f"portique:{tag} {owner}")):
            with contextlib.suppress(firewall.FirewallError):
                firewall.apply(f"table {family} {name} {{}}\ndelete table {family} {name}\n")
                dropped.append(f"{family} {name}")
    return dropped


_FOREIGN_TABLE = re.compile(r"portique_[0-9a-f]{8}")


def _orphaned(alias: str | None) -> bool:
    """A portique bridge whose engine root directory no longer exists (a deleted test
    root): no engine will ever clean it up but this one. A root that exists without
    a database is left alone: it may be another mount namespace's view."""
    if not alias or not alias.startswith("portique:"):
        return False
    _, sep, root = alias.partition(" ")
    return bool(sep) and root.startswith("/") and not Path(root).exists()
