"""portique.journal: entries written before side effects, taken over only from dead owners."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest

from portique import db, journal

TREE = {"type": "tree", "path": "/x/build/1"}
MOUNT = {"type": "overlay", "dir": "/x/build/1"}


def _begin_and_die(root: str) -> None:
    conn = journal.open_journal(Path(root))
    op = journal.Operation.begin(conn, "build", "ctx", [TREE])
    op.add(MOUNT)
    os._exit(0)  # no end(): as if killed


def dead_entry(root: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_begin_and_die, args=(str(root),))
    p.start()
    p.join(60)
    assert p.exitcode == 0


def test_an_operation_records_before_and_forgets_after(tmp_path: Path) -> None:
    conn = journal.open_journal(tmp_path)
    op = journal.Operation.begin(conn, "pull", "busybox", [TREE])
    op.add(MOUNT, TREE)  # already there: recorded once
    (entry,) = journal.entries(conn)
    assert (entry.kind, entry.subject, entry.resources) == ("pull", "busybox", [TREE, MOUNT])
    # A second connection (another process) reads what was committed.
    other = journal.open_journal(tmp_path)
    assert journal.entries(other)[0].resources == [TREE, MOUNT]
    op.drop(TREE)
    assert journal.entries(other)[0].resources == [MOUNT]
    op.end()
    assert journal.entries(other) == []


def test_begin_in_and_end_in_follow_the_callers_transaction(tmp_path: Path) -> None:
    conn = journal.open_journal(tmp_path)
    conn.execute("CREATE TABLE rows (x)")

    def fail() -> None:
        with db.transaction(conn):
            journal.Operation.begin_in(conn, "remove", "c1", [TREE])
            conn.execute("INSERT INTO rows VALUES (1)")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        fail()
    assert journal.entries(conn) == []
    with db.transaction(conn):
        op = journal.Operation.begin_in(conn, "remove", "c1", [TREE])
    with db.transaction(conn):
        op.end_in(conn)
        conn.execute("INSERT INTO rows VALUES (1)")
    assert journal.entries(conn) == []


def test_a_live_owners_entry_is_never_claimed(tmp_path: Path) -> None:
    conn = journal.open_journal(tmp_path)
    journal.Operation.begin(conn, "build", "", [TREE])
    assert not journal.has_abandoned(conn)
    assert journal.claim(conn) == []
    assert journal.subject_owners(conn, "") == [os.getpid()]
    assert journal.subject_owners(conn, "other") is None


def test_a_dead_owners_entry_is_claimed_once(tmp_path: Path) -> None:
    dead_entry(tmp_path)
    conn = journal.open_journal(tmp_path)
    assert journal.has_abandoned(conn)
    assert journal.subject_owners(conn, "ctx") == []
    (entry,) = journal.claim(conn)
    assert entry.resources == [TREE, MOUNT]
    # Claimed: we own it now, so neither we nor anyone else takes it again.
    other = journal.open_journal(tmp_path)
    assert journal.claim(other) == []
    assert journal.claim(conn) == []
    journal.forget(conn, entry.id)
    assert journal.entries(conn) == []


@pytest.mark.parametrize(
    "change",
    [
        "owner_start = owner_start + 1",  # the pid was reused by another process
        "owner_boot = 'another-boot'",  # the machine rebooted
        "owner_pid = 999999999",  # no such process
    ],
)
def test_owner_identity_is_pid_start_time_and_boot(tmp_path: Path, change: str) -> None:
    conn = journal.open_journal(tmp_path)
    journal.Operation.begin(conn, "build", "", [TREE])
    assert journal.claim(conn) == []
    conn.execute(f"UPDATE operations SET {change}")
    assert len(journal.claim(conn)) == 1


def test_claim_is_a_compare_and_set(tmp_path: Path) -> None:
    """Two recoverers that both saw the dead owner: only one update matches."""
    dead_entry(tmp_path)
    a = journal.open_journal(tmp_path)
    b = journal.open_journal(tmp_path)
    row = a.execute("SELECT id, owner_pid, owner_start, owner_boot FROM operations").fetchone()
    assert len(journal.claim(a)) == 1
    # b's update, with the owner it had read, finds nothing to change.
    cur = b.execute(
        "UPDATE operations SET owner_pid = 1 WHERE id = ? AND owner_pid = ? AND owner_start = ?"
        " AND owner_boot = ?",
        tuple(row),
    )
    assert cur.rowcount == 0


def test_unreadable_resources_are_tolerated(tmp_path: Path) -> None:
    conn = journal.open_journal(tmp_path)
    journal.Operation.begin(conn, "build", "", [TREE])
    conn.execute("UPDATE operations SET resources = 'not json'")
    assert journal.entries(conn)[0].resources == []
    conn.execute('UPDATE operations SET resources = \'[1, {"type": "tree"}]\'')
    assert journal.entries(conn)[0].resources == [{"type": "tree"}]


def test_table_is_created_by_begin(tmp_path: Path) -> None:
    conn = db.connect(tmp_path)
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT * FROM operations")
    journal.Operation.begin(conn, "load").end()
    assert journal.entries(conn) == []
