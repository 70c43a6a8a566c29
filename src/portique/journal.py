"""The operations journal: what a long operation may have made, until it is done.

Every operation that makes state outside one database transaction (build,
pull, load, import, create, start, rm, a --rm container's exit) records an
entry before its first side effect, adds each resource before it makes it,
and deletes the entry when it is done, or once it has undone its work after
a failure. A process killed in between (kill -9, OOM, a power cut) leaves its
entry; the next command that recovers (engine/recovery.py: build, pull, load,
run, rm, the prunes, `system prune`) finishes or undoes what it names.

Table in portique.db (component "journal"), version 1:

    operations(id INTEGER PRIMARY KEY AUTOINCREMENT,
               kind TEXT NOT NULL,          -- build | pull | load | import | create | start | remove | purge | rmi
               subject TEXT NOT NULL,       -- what it is about (a container id, a reference)
               owner_pid INTEGER NOT NULL,  -- the process doing it ...
               owner_start INTEGER NOT NULL,-- ... its /proc/<pid>/stat starttime (pids are reused)
               owner_boot TEXT NOT NULL,    -- ... and the boot it ran in
               started REAL NOT NULL,
               resources TEXT NOT NULL)     -- JSON list of objects, see below

Resources, each a JSON object with a "type":

    {"type": "tree", "path": P}                  a directory to delete (never through a mount)
    {"type": "overlay", "dir": D}                D/rootfs may be an overlay mount: unmount it
    {"type": "runtime", "root": R, "bundle": B}  runtime containers in state root R made from
                                                 bundle B: kill, delete (cgroups, state)
    {"type": "ingest", "digest": D}              ingest/ files of blob D (lock; the partial
                                                 stays for a resumed download)
    {"type": "staging", "key": K}                snapshots/tmp-<K>.* unpack dirs and their lock
    {"type": "blob", "digest": D}                a blob the operation made (a build's layer)
                                                 or whose rows it deleted (rmi, image prune):
                                                 deleted unless an image or the build cache uses it
    {"type": "container-create", "id": C}        containers/C before its row was committed
    {"type": "container-start", "id": C, "host": {...}}   a monitor's half-done start
    {"type": "container-remove", "id": C, "host": {...}, "volumes": [...]}
                                                 a removal whose row is gone: finish it
                                                 (a --rm monitor's "purge" entry, about no
                                                 subject, names what is left once the
                                                 removal was told: no host, no volumes)

Recovery is idempotent (every undo tolerates what is already gone) and runs
beside live operations: an entry is taken only when its owner is gone, judged
by pid, start time and boot id, never by pid alone. Taking it (`claim`) is one
compare-and-set transaction that makes the recovering process its owner, so
two recoverers never work on one entry, and one that dies in turn leaves the
entry to the next. An entry whose undo fails stays and is tried again later.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from portique import db

COMPONENT = "journal"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE operations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL DEFAULT '',
        owner_pid INTEGER NOT NULL,
        owner_start INTEGER NOT NULL,
        owner_boot TEXT NOT NULL,
        started REAL NOT NULL,
        resources TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX operations_subject ON operations(subject);
    """,
)

Resource = dict[str, Any]

_boot: str | None = None


def boot_id() -> str:
    """This boot's random id (a process of another boot is gone, whatever its pid)."""
    global _boot
    if _boot is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                _boot = f.read().strip()
        except OSError:
            _boot = ""
    return _boot


def me() -> tuple[int, int, str]:
    """(pid, start time, boot id) of this process: an entry's owner."""
    from portique.linux.proc import start_time

    pid = os.getpid()
    return pid, start_time(pid) or 0, boot_id()


def owner_alive(pid: int, start: int, boot: str) -> bool:
    from portique.linux.proc import is_alive

    return boot == boot_id() and is_alive(pid, start)


def ensure(conn: sqlite3.Connection) -> None:
    """Create the table if needed (a no-op read once it exists)."""
    db.migrate(conn, COMPONENT, MIGRATIONS)


def open_journal(root: Path) -> sqlite3.Connection:
    conn = db.connect(root)
    ensure(conn)
    return conn


def insert(
    c: sqlite3.Connection, kind: str, subject: str = "", resources: Sequence[Resource] = ()
) -> int:
    """Add an entry owned by this process, inside the caller's transaction."""
    pid, start, boot = me()
    cur = c.execute(
        "INSERT INTO operations(kind, subject, owner_pid, owner_start, owner_boot, started,"
        " resources) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (kind, subject, pid, start, boot, time.time(), _dump(resources)),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def forget(conn: sqlite3.Connection, entry_id: int) -> None:
    with db.transaction(conn):
        delete(conn, entry_id)


def delete(c: sqlite3.Connection, entry_id: int) -> None:
    """Drop an entry, inside the caller's transaction (with what replaces it)."""
    c.execute("DELETE FROM operations WHERE id = ?", (entry_id,))


def _dump(resources: Iterable[Resource]) -> str:
    return json.dumps(list(resources), separators=(",", ":"), sort_keys=True)


class Operation:
    """The entry of one operation in progress; see the module docstring.

        op = Operation.begin(conn, "build")
        op.add({"type": "tree", "path": "/var/lib/portique/build/1f2e"})   # then mkdir
        ...
        op.end()

    `begin_in`/`end_in` do the same inside a transaction the caller holds, so an
    entry can appear or go with the rows it is about. Safe to share between
    threads (pull adds from its download threads).
    """

    def __init__(self, conn: sqlite3.Connection, entry_id: int, resources: Sequence[Resource]):
        self.conn = conn
        self.id = entry_id
        self._resources = list(resources)
        self._lock = threading.Lock()

    @classmethod
    def begin(
        cls,
        conn: sqlite3.Connection,
        kind: str,
        subject: str = "",
        resources: Sequence[Resource] = (),
    ) -> Operation:
        ensure(conn)
        with db.transaction(conn):
            entry_id = insert(conn, kind, subject, resources)
        return cls(conn, entry_id, resources)

    @classmethod
    def begin_in(
        cls,
        c: sqlite3.Connection,
        kind: str,
        subject: str = "",
        resources: Sequence[Resource] = (),
    ) -> Operation:
        return cls(c, insert(c, kind, subject, resources), resources)

    @property
    def resources(self) -> list[Resource]:
        with self._lock:
            return list(self._resources)

    def add(self, *resources: Resource) -> None:
        """Record resources before making them (durable when this returns)."""
        with self._lock:
            new = [r for r in resources if r not in self._resources]
            if not new:
                return
            self._resources.extend(new)
            with db.transaction(self.conn):
                self._save()

    def drop(self, *resources: Resource) -> None:
        """Forget resources that are gone (their undo is done)."""
        with self._lock:
            kept = [r for r in self._resources if r not in resources]
            if len(kept) == len(self._resources):
                return
            self._resources = kept
            with db.transaction(self.conn):
                self._save()

    def _save(self) -> None:
        self.conn.execute(
            "UPDATE operations SET resources = ? WHERE id = ?",
            (_dump(self._resources), self.id),
        )

    def end(self) -> None:
        """The operation is done (or fully undone): delete its entry."""
        with self._lock:
            forget(self.conn, self.id)

    def end_in(self, c: sqlite3.Connection) -> None:
        c.execute("DELETE FROM operations WHERE id = ?", (self.id,))


class Entry:
    """An entry read back from the table."""

    __slots__ = ("id", "kind", "resources", "started", "subject")

    def __init__(
        self, id: int, kind: str, subject: str, started: float, resources: list[Resource]
    ) -> None:
        self.id = id
        self.kind = kind
        self.subject = subject
        self.started = started
        self.resources = resources

    def __repr__(self) -> str:
        return f"Entry({self.id}, {self.kind!r}, {self.subject!r}, {self.resources!r})"


def _entry(row: sqlite3.Row | tuple[Any, ...]) -> Entry:
    try:
        resources = json.loads(row[4])
    except ValueError:
        resources = []
    if not isinstance(resources, list):
        resources = []
    return Entry(row[0], row[1], row[2], row[3], [r for r in resources if isinstance(r, dict)])


_SELECT = "SELECT id, kind, subject, started, resources, owner_pid, owner_start, owner_boot"


def entries(conn: sqlite3.Connection) -> list[Entry]:
    """Every entry, live or not (oldest first)."""
    return [_entry(r) for r in conn.execute(f"{_SELECT} FROM operations ORDER BY id")]


def live_resources(conn: sqlite3.Connection, *, others: bool = False) -> list[Resource]:
    """The resources of entries whose owner lives (operations in progress); with
    `others`, not this process's: a recoverer owns the entries it claimed, and
    their resources are what it is undoing, not in use."""
    mine = me() if others else None
    out: list[Resource] = []
    for row in conn.execute(f"{_SELECT} FROM operations").fetchall():
        if (row[5], row[6], row[7]) != mine and owner_alive(row[5], row[6], row[7]):
            out.extend(_entry(row).resources)
    return out


def has_abandoned(conn: sqlite3.Connection) -> bool:
    """Whether some entry's owner is gone: one read, no lock (the common answer is no)."""
    rows = conn.execute("SELECT owner_pid, owner_start, owner_boot FROM operations").fetchall()
    return any(not owner_alive(r[0], r[1], r[2]) for r in rows)


def subject_owners(conn: sqlite3.Connection, subject: str) -> list[int] | None:
    """None: no entry about `subject`; else the pids of its entries' live owners
    (empty: abandoned only)."""
    rows = conn.execute(
        "SELECT owner_pid, owner_start, owner_boot FROM operations WHERE subject = ?", (subject,)
    ).fetchall()
    if not rows:
        return None
    return [r[0] for r in rows if owner_alive(r[0], r[1], r[2])]


def claim(conn: sqlite3.Connection) -> list[Entry]:
    """Take over every entry whose owner is gone; the caller then recovers each and
    `forget`s it (or leaves it, for a later try, when something could not be undone)."""
    if not has_abandoned(conn):
        return []
    pid, start, boot = me()
    claimed = []
    with db.transaction(conn):
        for row in conn.execute(f"{_SELECT} FROM operations ORDER BY id").fetchall():
            if owner_alive(row[5], row[6], row[7]):
                continue
            cur = conn.execute(
                "UPDATE operations SET owner_pid = ?, owner_start = ?, owner_boot = ?"
                " WHERE id = ? AND owner_pid = ? AND owner_start = ? AND owner_boot = ?",
                (pid, start, boot, row[0], row[5], row[6], row[7]),
            )
            if cur.rowcount == 1:
                claimed.append(_entry(row))
    return claimed


__all__ = [
    "Entry",
    "Operation",
    "Resource",
    "boot_id",
    "claim",
    "ensure",
    "entries",
    "forget",
    "has_abandoned",
    "insert",
    "live_resources",
    "me",
    "open_journal",
    "owner_alive",
    "subject_owners",
]
