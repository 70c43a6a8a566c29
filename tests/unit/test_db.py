from __future__ import annotations

from pathlib import Path

import pytest

from portique import db


def test_migrate_applies_each_migration_once(tmp_path: Path) -> None:
    conn = db.connect(tmp_path)
    migrations = ["CREATE TABLE a (x INTEGER);", "ALTER TABLE a ADD COLUMN y TEXT;"]
    db.migrate(conn, "test", migrations[:1])
    db.migrate(conn, "test", migrations)
    db.migrate(conn, "test", migrations)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(a)")]
    assert cols == ["x", "y"]
    assert conn.execute("SELECT version FROM schema_versions").fetchone()[0] == 2


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    conn = db.connect(tmp_path)
    conn.execute("CREATE TABLE t (x INTEGER)")

    def fail() -> None:
        with db.transaction(conn):
            conn.execute("INSERT INTO t VALUES (1)")
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fail()
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = db.connect(tmp_path)
    db.migrate(conn, "c", ["CREATE TABLE a (x);", "CREATE TABLE b (x);"])
    with pytest.raises(RuntimeError, match="newer than this portique"):
        db.migrate(conn, "c", ["CREATE TABLE a (x);"])
