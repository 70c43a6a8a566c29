"""Helpers of the crash tests: a `portique` bound to one engine root, and the leak check."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from portique.runtime.container import SECCOMP_CACHE
from support.rtcli_bundle import portique_cgroups

PORTIQUE = str(Path(sys.executable).parent / "portique")


@dataclass
class Engine:
    """A `portique` bound to its own root and run root."""

    root: Path
    run_root: Path
    env: dict[str, str]
    seen: set[str] = field(default_factory=set)  # ids whose cgroups must be gone at the end

    def __call__(
        self, *args: str, fault: str = "", hit: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if fault:
            env["PORTIQUE_FAULT"] = fault
            if hit is not None:
                env["PORTIQUE_FAULT_HIT"] = str(hit)
        return subprocess.run(
            [PORTIQUE, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str, timeout: float = 120) -> str:
        p = self(*args, timeout=timeout)
        assert p.returncode == 0, f"portique {' '.join(args)} -> {p.returncode}: {p.stderr}"
        return p.stdout

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.root / "portique.db")

    def note_ids(self) -> None:
        """Remember every container id there is now (runtime state, container dirs,
        rows, journal entries): their cgroups and monitors must be gone at the end."""
        for d in (self.run_root / "runtime", self.root / "containers"):
            if d.is_dir():
                self.seen.update(set(os.listdir(d)) - {SECCOMP_CACHE})
        with self.db() as conn:
            for table, column in (("containers", "id"), ("operations", "resources")):
                try:
                    rows = conn.execute(f"SELECT {column} FROM {table}").fetchall()
                except sqlite3.OperationalError:
                    continue
                for (value,) in rows:
                    if table == "containers":
                        self.seen.add(value)
                    else:
                        self.seen.update(
                            r["id"] for r in json.loads(value) if isinstance(r.get("id"), str)
                        )


# ---- leaks -------------------------------------------------------------------------------

# Rows that must be gone once every container is removed and `system prune -a
# --volumes` ran: (table, what it holds).
EMPTY_TABLES = (
    "containers",
    "container_volumes",
    "volumes",
    "image_users",
    "operations",
    "images",
    "image_layers",
    "image_tags",
    "image_digests",
    "image_blobs",
    "layers",
    "layer_blobs",
    "endpoints",
    "ports",
)


def leaks(e: Engine) -> list[str]:
    """What is left of `e`'s containers, builds, pulls and loads once they are all
    removed and pruned: mounts, cgroups, processes, veths, nftables rules, rows,
    files. Empty when nothing leaked."""
    out: list[str] = []
    _wait_for_purges(e)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point.startswith((str(e.root) + "/", str(e.run_root) + "/")):
                out.append(f"mount {point}")
    for cid in sorted(e.seen):
        out += [f"cgroup {p}" for p in portique_cgroups(cid)]
        out += [f"process {pid} of {cid[:12]}" for pid in _processes_naming(cid)]
    out += _network_leaks(e)
    with e.db() as conn:
        for table in EMPTY_TABLES:
            try:
                n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            except sqlite3.OperationalError:
                continue  # that component never ran in this root
            if n:
                out.append(f"{n} rows in {table}")
    for sub in (
        "ingest",
        "build",
        "tmp",
        "containers",
        "volumes",
        "blobs/sha256",
        "snapshots/locks",
    ):
        d = e.root / sub
        if d.is_dir():
            out += [f"file {sub}/{name}" for name in sorted(os.listdir(d))]
    snapshots = e.root / "snapshots"
    if snapshots.is_dir():
        extra = set(os.listdir(snapshots)) - {"empty", "locks"}
        out += [f"file snapshots/{name}" for name in sorted(extra)]
    for sub in ("containers", "runtime"):
        d = e.run_root / sub
        if d.is_dir():
            # The runtime's compiled seccomp filters are a cache, not a leftover.
            names = sorted(set(os.listdir(d)) - {SECCOMP_CACHE})
            out += [f"run file {sub}/{name}" for name in names]
    return out


def _wait_for_purges(e: Engine, timeout: float = 30.0) -> None:
    """A --rm monitor purges its container's runtime state, cgroups and files
    after `run --rm` returned: wait until no monitor of a removed container
    (no row) is left (one still alive after `timeout` is reported as a leak)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with e.db() as conn:
            try:
                rows = {r[0] for r in conn.execute("SELECT id FROM containers")}
            except sqlite3.OperationalError:
                rows = set()
        if not any(_processes_naming(c) for c in e.seen - rows):
            return
        time.sleep(0.05)


def _processes_naming(cid: str) -> list[int]:
    """Monitors (their command line names `id=<cid>`, or their comm is `pqm-<id>`:
    forked from a warm server) still running."""
    if len(cid) != 64:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{name}/comm", "rb") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if f"id={cid}".encode() in cmd or comm == f"pqm-{cid[:11]}".encode():
            pids.append(int(name))
    return pids


def _network_leaks(e: Engine) -> list[str]:
    from portique.network import bridge, firewall

    out = []
    table = firewall.table_name(e.root)
    nat = subprocess.run(
        ["nft", "list", "table", "ip", f"{table}_nat"], capture_output=True, text=True, check=False
    )
    out += [f"nft rule {ln.strip()}" for ln in nat.stdout.splitlines() if '"container ' in ln]
    links = bridge.host_links()
    ours = {
        link.index
        for link in links
        if link.kind == "bridge" and (link.alias or "").split(" ")[0] == f"portique:{table}"
    }
    out += [f"veth {link.name}" for link in links if link.master in ours]
    return out


__all__ = ["EMPTY_TABLES", "PORTIQUE", "Engine", "leaks"]
