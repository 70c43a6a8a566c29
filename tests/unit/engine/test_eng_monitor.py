from __future__ import annotations

from pathlib import Path

import pytest

from portique import journal
from portique.engine import db, dblite
from portique.engine.monitor import parse_args, restart_delay
from portique.engine.state import Event


@pytest.mark.parametrize(
    ("policy", "code", "stopped", "count", "ran", "expected"),
    [
        ("no:0", 1, False, 0, 1.0, None),
        ("on-failure:3", 0, False, 0, 1.0, None),
        ("on-failure:3", 1, False, 0, 1.0, 0.1),
        ("on-failure:3", 1, False, 2, 1.0, 0.4),
        ("on-failure:3", 1, False, 3, 1.0, None),
        ("on-failure:0", 1, False, 50, 1.0, 60.0),
        ("always:0", 0, False, 1, 1.0, 0.2),
        ("always:0", 0, True, 1, 1.0, None),
        ("unless-stopped:0", 9, False, 5, 30.0, 0.1),
    ],
)
def test_restart_delay(
    policy: str, code: int, stopped: bool, count: int, ran: float, expected: float | None
) -> None:
    assert restart_delay(policy, code, stopped, count, ran) == expected


def test_parse_args() -> None:
    assert parse_args(["id=abc", "pid=5", "oom="]) == {"id": "abc", "pid": "5", "oom": ""}


def test_dblite_matches_schema(tmp_path: Path) -> None:
    conn = db.open_db(tmp_path)
    cid = "c" * 64
    db.insert_container(
        conn,
        db.ContainerRow(
            id=cid,
            name="x",
            image="b",
            image_id="sha256:" + "0" * 64,
            created=1.0,
            config={"Config": {}, "HostConfig": {}},
        ),
    )
    db.transition(conn, cid, Event.STARTED)
    db.insert_volume(conn, db.VolumeRow("anon", "local", "/v", 1.0, {}, {}, True))
    db.insert_volume(conn, db.VolumeRow("named", "local", "/n", 1.0, {}, {}, False))
    db.link_volume(conn, cid, "anon")
    db.link_volume(conn, cid, "named")
    db.update_state(conn, cid, monitor_pid=77, restart_count=2, stop_requested=True)
    lite = dblite.connect(str(tmp_path))
    assert dblite.stop_flags(lite, cid) == (True, 2)
    dblite.record_exit(lite, cid, 137, True)
    row = db.get_container(conn, cid)
    assert row is not None
    assert (row.status, row.exit_code, row.oom_killed, row.monitor_pid) == ("exited", 137, True, 77)
    removed = dblite.delete_row(lite, cid)
    assert removed is not None
    assert removed[:2] == (["anon"], {})
    assert db.get_container(conn, cid) is None
    # The clean-up still to do is in the journal, in the same transaction.
    (entry,) = journal.entries(conn)
    assert (entry.id, entry.kind, entry.subject) == (removed[2], "remove", cid)
    assert entry.resources == [
        {"type": "container-remove", "id": cid, "host": {}, "volumes": ["anon"]}
    ]
    assert dblite.delete_row(lite, cid) is None
    assert dblite.stop_flags(lite, cid) is None


def test_read_oom_count(tmp_path: Path) -> None:
    f = tmp_path / "memory.oom_control"
    f.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert dblite.read_oom_count(str(f)) == 3
    assert dblite.read_oom_count(str(tmp_path / "missing")) == 0
    assert dblite.read_oom_count("") == 0
