"""Firewall sync: portique's nftables tables made to match the database.

Functions of a `Networks` (network/networks.py: `nets.sync_firewall()`,
`nets.flush_firewall()`). The rules are rendered from the database as a
whole (network/firewall.py) and installed in one nft transaction, under a
lock, reading the database inside it, so the last writer always installs
the newest state and a crash is repaired by the next sync.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from portique.network import db as ndb

if TYPE_CHECKING:
    from portique.network.networks import Networks

STAMP = "firewall.sha256"  # in the run directory: the digest of the last script applied


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(run_dir / "firewall.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def script(nets: Networks) -> str:
    """The nft script of every network and published port of this engine root."""
    from portique.network import firewall  # subprocess: only when the rules change

    bridges = [
        firewall.BridgeRules(n.id, n.bridge, n.subnet, n.gateway, n.internal) for n in nets.list()
    ]
    return firewall.render_ruleset(
        nets.table, bridges, ndb.published_ports(nets.conn), owner=str(nets.root.resolve())
    )


def sync(nets: Networks, *, force: bool = False) -> None:
    """Install the rules the database calls for.

    The digest of the last script applied is kept in the run directory (a tmpfs:
    gone at reboot, like the tables): an unchanged ruleset costs no `nft` run."""
    from portique.network import firewall

    stamp = nets.run_dir / STAMP
    with _locked(nets.run_dir):
        text = script(nets)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if not force:
            with contextlib.suppress(OSError):
                if stamp.read_text() == digest:
                    return
        stamp.unlink(missing_ok=True)
        firewall.apply(text)
        stamp.write_text(digest)


def flush(nets: Networks) -> None:
    """Remove this root's tables."""
    from portique.network import firewall

    with _locked(nets.run_dir):
        (nets.run_dir / STAMP).unlink(missing_ok=True)
        try:
            firewall.apply(firewall.render_flush(nets.table))
        except firewall.FirewallError as exc:
            # A kernel without nf_tables (the cgroup v2 test VM's) holds no
            # tables of ours to flush; any other failure is real.
            if "Protocol not supported" not in str(exc):
                raise


__all__ = ["flush", "script", "sync"]
