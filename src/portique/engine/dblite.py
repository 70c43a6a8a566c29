"""The few statements the monitor runs when its container exits, with bare sqlite3.

The monitor records the exit before it loads the engine proper (db.py pulls
in dataclasses, json, ...; the runtime much more; engine/state.py's enum
alone ~5 ms), so a foreground `run` gets its exit code as soon as the DB
says "exited". What these statements know of the others is written down
here once and checked, never trusted: tests/unit/engine/test_eng_state.py
compiles every statement against the schema engine/db.py's migrations make
(SCHEMA_VERSION) and derives EXIT_FROM and EXIT_TO from the transition table
(engine/state.py, Event.EXITED), so the exit is that table's transition.
"""

from __future__ import annotations

import os
import sqlite3
import time

SCHEMA_VERSION = 1  # of the "engine" component (engine/db.py MIGRATIONS)
EXIT_FROM = ("running", "paused")  # state.sources(Event.EXITED)
EXIT_TO = "exited"  # state.target(Event.EXITED)

STOP_FLAGS = "SELECT stop_requested, restart_count FROM containers WHERE id = ?"
# The exit, as the transition table allows it: a row in another status is left alone.
RECORD_EXIT = (
    f"UPDATE containers SET status = '{EXIT_TO}', exit_code = ?, oom_killed = ?,"
    " finished_at = ?, pid = 0 WHERE id = ?"
    f" AND status IN ({', '.join(repr(s) for s in EXIT_FROM)})"
)
CONFIG_OF = "SELECT config FROM containers WHERE id = ?"
# The policy as it is now: `update --restart` changes it while the container runs.
RESTART_POLICY = (
    "SELECT json_extract(config, '$.HostConfig.RestartPolicy.Name'),"
    " json_extract(config, '$.HostConfig.RestartPolicy.MaximumRetryCount')"
    " FROM containers WHERE id = ?"
)
ANONYMOUS_VOLUMES = (
    "SELECT v.name FROM volumes v JOIN container_volumes cv ON cv.volume = v.name"
    " WHERE cv.container_id = ? AND v.anonymous = 1"
)
# A container event's attributes as JSON text (engine/events.py's container_attributes):
# its labels, image and name, built by SQLite so the monitor needs no json module.
EVENT_ATTRIBUTES = (
    "SELECT json_set(CASE WHEN json_type(config, '$.Config.Labels') = 'object'"
    " THEN json_extract(config, '$.Config.Labels') ELSE '{}' END,"
    " '$.image', image, '$.name', name) FROM containers WHERE id = ?"
)
VOLUMES_OF = "SELECT volume FROM container_volumes WHERE container_id = ?"
DELETE_CONTAINER = "DELETE FROM containers WHERE id = ?"
DELETE_IMAGE_USER = "DELETE FROM image_users WHERE container_id = ?"
STATEMENTS = (
    STOP_FLAGS,
    RECORD_EXIT,
    CONFIG_OF,
    RESTART_POLICY,
    ANONYMOUS_VOLUMES,
    EVENT_ATTRIBUTES,
    VOLUMES_OF,
    DELETE_CONTAINER,
    DELETE_IMAGE_USER,
)


def connect(root: str) -> sqlite3.Connection:
    """portique.db under the engine root `root` (the monitor's `root=` argument)."""
    conn = sqlite3.connect(os.path.join(root, "portique.db"), timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    # As portique.db.connect: in WAL mode NORMAL syncs at checkpoints, not at every
    # commit (durable across a crash of the process, not of the machine). The
    # default, FULL, fsynced the WAL on the exit path a foreground `run` waits on.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def stop_flags(conn: sqlite3.Connection, cid: str) -> tuple[bool, int] | None:
    """(stop_requested, restart_count), or None when the container is gone."""
    row = conn.execute(STOP_FLAGS, (cid,)).fetchone()
    return None if row is None else (bool(row[0]), int(row[1]))


def restart_policy(conn: sqlite3.Connection, cid: str) -> str | None:
    """The container's restart policy as the monitor's `restart=` argument
    (`name:max`), or None when the container is gone."""
    row = conn.execute(RESTART_POLICY, (cid,)).fetchone()
    if row is None:
        return None
    return f"{row[0] or 'no'}:{int(row[1] or 0)}"


def event_attributes(conn: sqlite3.Connection, cid: str) -> str | None:
    """The container's event attributes as JSON text, None when it is gone."""
    try:
        row = conn.execute(EVENT_ATTRIBUTES, (cid,)).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def volumes_of(conn: sqlite3.Connection, cid: str) -> list[str]:
    """The volumes the container mounts (for the `volume unmount` events)."""
    try:
        return [str(r[0]) for r in conn.execute(VOLUMES_OF, (cid,))]
    except sqlite3.Error:
        return []


def record_exit(conn: sqlite3.Connection, cid: str, code: int, oom: bool) -> bool:
    """The exit (Event.EXITED); False when the row was in no status to exit from."""
    # monitor_pid stays: `start` waits for this monitor's clean-up to finish.
    cur = conn.execute(RECORD_EXIT, (code, int(oom), time.time(), cid))
    return cur.rowcount == 1


def delete_row(
    conn: sqlite3.Connection, cid: str
) -> tuple[list[str], dict[str, object], int] | None:
    """--rm: drop the row now, with its image_users row and a journal entry for the
    clean-up after (portique/journal.py), in one transaction; returns (its anonymous
    volumes, its HostConfig, the entry's id), or None if the row was gone. (The
    exit and the removal at once: the row goes, so no status is written.)"""
    import json

    from portique import journal

    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(CONFIG_OF, (cid,)).fetchone()
        if row is None:
            conn.execute("ROLLBACK")
            return None
        vols = [r[0] for r in conn.execute(ANONYMOUS_VOLUMES, (cid,))]
        host = json.loads(row[0]).get("HostConfig") or {}
        conn.execute(DELETE_CONTAINER, (cid,))
        try:
            conn.execute(DELETE_IMAGE_USER, (cid,))
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):  # a root no image was ever stored in
                raise
        resource = {"type": "container-remove", "id": cid, "host": host, "volumes": vols}
        entry = journal.insert(conn, "remove", cid, [resource])
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return vols, host, entry


def read_oom_count(path: str) -> int:
    """The oom_kill counter of memory.oom_control (v1) or memory.events (v2)."""
    if not path:
        return 0
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0
