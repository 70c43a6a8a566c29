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


def test_many_processes_open_a_new_database_at_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from portique import db;"
        "c = db.connect(Path(sys.argv[1]));"
        "db.migrate(c, 'race', ['CREATE TABLE r (x INTEGER);']);"
        "c.execute('INSERT INTO r VALUES (1)')"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stderr=subprocess.PIPE)
        for _ in range(8)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    conn = db.connect(tmp_path)
    assert conn.execute("SELECT count(*) FROM r").fetchone()[0] == 8
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
