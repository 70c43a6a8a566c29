"""The engine's tables in portique.db (component "engine").

Schema, version 1:

    containers(
        id TEXT PRIMARY KEY,            -- 64 hex
        name TEXT NOT NULL UNIQUE,      -- without Docker's leading "/"
        image TEXT NOT NULL,            -- the reference the user gave
        image_id TEXT NOT NULL,         -- sha256:...
        created REAL NOT NULL,          -- unix time
        config TEXT NOT NULL,           -- JSON: {"Config": ..., "HostConfig": ..., "Path", "Args", "Mounts"}
        status TEXT NOT NULL,           -- created|running|paused|restarting|exited|dead|removing
        pid INTEGER NOT NULL DEFAULT 0,
        exit_code INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        oom_killed INTEGER NOT NULL DEFAULT 0,
        started_at REAL NOT NULL DEFAULT 0,
        finished_at REAL NOT NULL DEFAULT 0,
        restart_count INTEGER NOT NULL DEFAULT 0,
        monitor_pid INTEGER NOT NULL DEFAULT 0,
        stop_requested INTEGER NOT NULL DEFAULT 0  -- user stop: the restart policy stays quiet
    )
    volumes(name TEXT PRIMARY KEY, driver TEXT, mountpoint TEXT, created REAL,
            labels TEXT (JSON), options TEXT (JSON), anonymous INTEGER)
    container_volumes(container_id -> containers ON DELETE CASCADE,
                      volume -> volumes, PRIMARY KEY(container_id, volume))

Every multi-row change is one `transaction()`; the UNIQUE name column is what
makes two concurrent `run --name x` calls resolve to exactly one winner. The
status column changes only through `transition` (the table in
engine/state.py); the monitor's exit fast path (dblite.py) is checked against
both this schema and that table by tests/unit/engine/test_eng_state.py.

A container's row in `image_users` (the image component's table, in the same
file) is inserted and deleted in the transaction that inserts or deletes the
container, so the two never disagree; `drop_stale_image_users` repairs what
older versions left. The operations journal (portique/journal.py) is migrated
here too: create, start and remove record themselves in it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from portique import db as _db
from portique.engine.state import INITIAL, Event, Status, next_status
from portique.errors import Conflict, NoSuchObject, NotFound
from portique.oci.value import field, value

COMPONENT = "engine"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        image TEXT NOT NULL,
        image_id TEXT NOT NULL,
        created REAL NOT NULL,
        config TEXT NOT NULL,
        status TEXT NOT NULL,
        pid INTEGER NOT NULL DEFAULT 0,
        exit_code INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        oom_killed INTEGER NOT NULL DEFAULT 0,
        started_at REAL NOT NULL DEFAULT 0,
        finished_at REAL NOT NULL DEFAULT 0,
        restart_count INTEGER NOT NULL DEFAULT 0,
        monitor_pid INTEGER NOT NULL DEFAULT 0,
        stop_requested INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        driver TEXT NOT NULL DEFAULT 'local',
        mountpoint TEXT NOT NULL,
        created REAL NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        options TEXT NOT NULL DEFAULT '{}',
        anonymous INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE container_volumes (
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        volume TEXT NOT NULL REFERENCES volumes(name),
        PRIMARY KEY (container_id, volume)
    );
    CREATE INDEX container_volumes_volume ON container_volumes(volume);
    """,
)

# What update_state may write; the status goes through transition() only.
STATE_FIELDS = (
    "pid",
    "exit_code",
    "error",
    "oom_killed",
    "started_at",
    "finished_at",
    "restart_count",
    "monitor_pid",
    "stop_requested",
)


@value
class ContainerRow:
    id: str
    name: str
    image: str
    image_id: str
    created: float
    config: Mapping[str, Any]
    status: Status = INITIAL
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    restart_count: int = 0
    monitor_pid: int = 0
    stop_requested: bool = False

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ContainerRow:
        return cls(
            id=row["id"],
            name=row["name"],
            image=row["image"],
            image_id=row["image_id"],
            created=row["created"],
            config=json.loads(row["config"]),
            status=Status(row["status"]),
            pid=row["pid"],
            exit_code=row["exit_code"],
            error=row["error"],
            oom_killed=bool(row["oom_killed"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            restart_count=row["restart_count"],
            monitor_pid=row["monitor_pid"],
            stop_requested=bool(row["stop_requested"]),
        )


@value
class VolumeRow:
    name: str
    driver: str
    mountpoint: str
    created: float
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    anonymous: bool = False

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> VolumeRow:
        return cls(
            name=row["name"],
            driver=row["driver"],
            mountpoint=row["mountpoint"],
            created=row["created"],
            labels=json.loads(row["labels"]),
            options=json.loads(row["options"]),
            anonymous=bool(row["anonymous"]),
        )


def open_db(root: Path) -> sqlite3.Connection:
    from portique import journal

    conn = _db.connect(root)
    _db.migrate(conn, COMPONENT, MIGRATIONS)
    journal.ensure(conn)
    return conn


transaction = _db.transaction


# ---------------------------------------------------------------- containers


def insert_container(conn: sqlite3.Connection, row: ContainerRow) -> None:
    if row.status != INITIAL:
        raise ValueError(f"a container is created {INITIAL}, not {row.status}")
    try:
        conn.execute(
            "INSERT INTO containers(id, name, image, image_id, created, config, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.name,
                row.image,
                row.image_id,
                row.created,
                json.dumps(row.config, separators=(",", ":")),
                str(row.status),
            ),
        )
    except sqlite3.IntegrityError as exc:
        if "name" in str(exc):
            raise Conflict(
                f'the container name "/{row.name}" is already in use',
                hint="remove or rename that container to reuse the name",
            ) from None
        raise Conflict(f"container {row.id} already exists") from None


def name_taken(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM containers WHERE name = ?", (name,)).fetchone() is not None


def get_container(conn: sqlite3.Connection, cid: str) -> ContainerRow | None:
    row = conn.execute("SELECT * FROM containers WHERE id = ?", (cid,)).fetchone()
    return ContainerRow.from_row(row) if row else None


def resolve_container(conn: sqlite3.Connection, ref: str) -> ContainerRow:
    """Full id, exact name (with or without "/"), or a unique id prefix."""
    if not ref:
        raise NoSuchObject("container", ref)
    name = ref[1:] if ref.startswith("/") else ref
    row = conn.execute("SELECT * FROM containers WHERE id = ? OR name = ?", (ref, name)).fetchone()
    if row is not None:
        return ContainerRow.from_row(row)
    if all(c in "0123456789abcdef" for c in ref):
        rows = conn.execute(
            "SELECT * FROM containers WHERE id >= ? AND id < ? LIMIT 2",
            (ref, ref + "g"),
        ).fetchall()
        if len(rows) == 1:
            return ContainerRow.from_row(rows[0])
        if len(rows) > 1:
            raise Conflict(f"multiple containers found with provided prefix: {ref}")
    raise NoSuchObject("container", ref)


def list_containers(conn: sqlite3.Connection) -> list[ContainerRow]:
    rows = conn.execute("SELECT * FROM containers ORDER BY created DESC, rowid DESC").fetchall()
    return [ContainerRow.from_row(r) for r in rows]


def update_state(conn: sqlite3.Connection, cid: str, **fields: Any) -> None:
    """Write state fields other than the status (that is `transition`'s)."""
    bad = set(fields) - set(STATE_FIELDS)
    if bad:
        raise ValueError(f"not state fields: {sorted(bad)}")
    _write(conn, cid, fields)


def transition(conn: sqlite3.Connection, cid: str, event: Event, **fields: Any) -> Status | None:
    """Apply `event` to container `cid`, inside the caller's transaction: the status
    becomes the table's next one (InvalidState when `event` is illegal now) and
    `fields` are written with it. None when the container is gone."""
    bad = set(fields) - set(STATE_FIELDS)
    if bad:
        raise ValueError(f"not state fields: {sorted(bad)}")
    row = conn.execute("SELECT status, name FROM containers WHERE id = ?", (cid,)).fetchone()
    if row is None:
        return None
    new = next_status(row["status"], event, row["name"], cid)
    _write(conn, cid, {"status": str(new), **fields})
    return new


def _write(conn: sqlite3.Connection, cid: str, fields: Mapping[str, Any]) -> None:
    if not fields:
        return
    cols = ", ".join(f"{k} = ?" for k in fields)
    values = [int(v) if isinstance(v, bool) else v for v in fields.values()]
    conn.execute(f"UPDATE containers SET {cols} WHERE id = ?", (*values, cid))


def update_config(conn: sqlite3.Connection, cid: str, config: Mapping[str, Any]) -> None:
    conn.execute(
        "UPDATE containers SET config = ? WHERE id = ?",
        (json.dumps(config, separators=(",", ":")), cid),
    )


def rename_container(conn: sqlite3.Connection, cid: str, new: str) -> None:
    try:
        conn.execute("UPDATE containers SET name = ? WHERE id = ?", (new, cid))
    except sqlite3.IntegrityError:
        raise Conflict(f'the container name "/{new}" is already in use') from None


def delete_container(conn: sqlite3.Connection, cid: str) -> None:
    """The row, its volume links, and its image_users row (one transaction: the caller's)."""
    conn.execute("DELETE FROM containers WHERE id = ?", (cid,))
    try:
        conn.execute("DELETE FROM image_users WHERE container_id = ?", (cid,))
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):  # a root no image was ever stored in
            raise


# --------------------------------------------------------------- image users
# image_users(container_id PRIMARY KEY, image_id -> images) belongs to the image
# component (image/metadata.py); the engine writes it inside its own transactions.


def add_image_user(conn: sqlite3.Connection, image_id: str, cid: str) -> None:
    try:
        conn.execute(
            "INSERT INTO image_users(container_id, image_id) VALUES (?, ?)"
            " ON CONFLICT(container_id) DO UPDATE SET image_id = excluded.image_id",
            (cid, image_id),
        )
    except sqlite3.IntegrityError:  # the foreign key: the image was just removed
        raise NotFound(f"no such image: {image_id}") from None


def drop_stale_image_users(conn: sqlite3.Connection) -> int:
    """Drop image_users rows whose container is gone (left by crashes of older
    versions, which deleted the two rows in separate transactions)."""
    stale = (
        "SELECT 1 FROM image_users u WHERE NOT EXISTS"
        " (SELECT 1 FROM containers c WHERE c.id = u.container_id) LIMIT 1"
    )
    try:
        if conn.execute(stale).fetchone() is None:
            return 0
    except sqlite3.OperationalError:  # no image table yet: a root without images
        return 0
    with transaction(conn):
        cur = conn.execute(
            "DELETE FROM image_users WHERE NOT EXISTS"
            " (SELECT 1 FROM containers c WHERE c.id = image_users.container_id)"
        )
    return cur.rowcount


# ------------------------------------------------------------------- volumes


def insert_volume(conn: sqlite3.Connection, vol: VolumeRow) -> None:
    conn.execute(
        "INSERT INTO volumes(name, driver, mountpoint, created, labels, options, anonymous)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            vol.name,
            vol.driver,
            vol.mountpoint,
            vol.created,
            json.dumps(dict(vol.labels)),
            json.dumps(dict(vol.options)),
            int(vol.anonymous),
        ),
    )


def get_volume(conn: sqlite3.Connection, name: str) -> VolumeRow | None:
    row = conn.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
    return VolumeRow.from_row(row) if row else None


def list_volumes(conn: sqlite3.Connection) -> list[VolumeRow]:
    return [VolumeRow.from_row(r) for r in conn.execute("SELECT * FROM volumes ORDER BY name")]


def volume_users(conn: sqlite3.Connection, name: str) -> list[str]:
    rows = conn.execute("SELECT container_id FROM container_volumes WHERE volume = ?", (name,))
    return [r[0] for r in rows]


def container_volumes(conn: sqlite3.Connection, cid: str) -> list[VolumeRow]:
    rows = conn.execute(
        "SELECT v.* FROM volumes v JOIN container_volumes cv ON cv.volume = v.name"
        " WHERE cv.container_id = ?",
        (cid,),
    )
    return [VolumeRow.from_row(r) for r in rows]


def link_volume(conn: sqlite3.Connection, cid: str, name: str) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO container_volumes(container_id, volume) VALUES (?, ?)", (cid, name)
    )


def delete_volume(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("DELETE FROM volumes WHERE name = ?", (name,))


def iter_ids(conn: sqlite3.Connection) -> Iterator[str]:
    for row in conn.execute("SELECT id FROM containers"):
        yield row[0]
