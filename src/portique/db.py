"""The engine's SQLite database: one file, WAL mode, versioned schemas.

Each component (image/, engine/, network/) owns its tables and lists its own
migrations; `migrate()` applies those not yet recorded in `schema_versions`,
each in one transaction. Several portique processes may use the file at once:
WAL lets readers proceed beside one writer, and `busy_timeout` makes writers
wait for each other instead of failing.

Schema of this module's own table:

    schema_versions(component TEXT PRIMARY KEY, version INTEGER NOT NULL)
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

DB_NAME = "portique.db"


def close_root(root: Path) -> None:
    """Make the engine root (creating it) root's alone: mode 0700.

    Containers run as root and write into volumes and upper dirs under it: a
    setuid-root program or a device node of the host's disk made there would
    serve every host user who can walk in (CVE-2021-41091); the database holds
    every container's environment. A root an older portique made 0755 is
    closed here, by the first command that opens it.
    """
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = os.stat(root)
    if st.st_mode & 0o077 and st.st_uid == os.geteuid():
        os.chmod(root, 0o700)


def connect(root: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database under the engine root `root`."""
    close_root(root)
    conn = sqlite3.connect(
        root / DB_NAME, timeout=30.0, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 30000")
    _use_wal(conn)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions ("
        " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL mode (a property of the file, kept once set).

    Changing the journal mode needs an exclusive lock, and SQLite reports a
    conflict at once instead of through the busy handler: two processes
    opening a new database together can see "database is locked" here. Check
    first (the usual case is already WAL), then retry briefly, bounded.
    """
    delay = 0.005
    for attempt in range(200):
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode == "wal":
                return
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception.

    IMMEDIATE takes the write lock up front so two writers never deadlock
    upgrading a read lock.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, component: str, migrations: Sequence[str]) -> None:
    """Apply `migrations[v:]` for `component`, where v is its recorded version.

    Each migration is a SQL script; migration i brings the schema to version i+1.
    """
    row = conn.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (component,)
    ).fetchone()
    if row is not None and row[0] == len(migrations):
        return
    with transaction(conn):
        row = conn.execute(
            "SELECT version FROM schema_versions WHERE component = ?", (component,)
        ).fetchone()
        current = row[0] if row is not None else 0
        if current > len(migrations):
            raise RuntimeError(
                f"database schema of {component} is version {current}, newer than this portique"
            )
        for script in migrations[current:]:
            for stmt in _statements(script):
                conn.execute(stmt)
        conn.execute(
            "INSERT INTO schema_versions(component, version) VALUES (?, ?)"
            " ON CONFLICT(component) DO UPDATE SET version = excluded.version",
            (component, len(migrations)),
        )


def _statements(script: str) -> Iterator[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf
            buf = ""
    if buf.strip():
        yield buf
