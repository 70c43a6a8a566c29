from __future__ import annotations

from pathlib import Path

import pytest

from portique.engine import db
from portique.engine.state import Event, Status
from portique.errors import Conflict, InvalidState, NotFound


def _row(cid: str, name: str, created: float = 1.0) -> db.ContainerRow:
    return db.ContainerRow(
        id=cid,
        name=name,
        image="busybox",
        image_id="sha256:" + "0" * 64,
        created=created,
        config={"Config": {"Cmd": ["sh"]}, "HostConfig": {}},
    )


def test_insert_resolve_prefix_and_name(tmp_path: Path) -> None:
    conn = db.open_db(tmp_path)
    a, b = "ab" + "1" * 62, "ac" + "2" * 62
    with db.transaction(conn):
        db.insert_container(conn, _row(a, "first", 1))
        db.insert_container(conn, _row(b, "second", 2))
    assert db.resolve_container(conn, "first").id == a
    assert db.resolve_container(conn, "/second").id == b
    assert db.resolve_container(conn, "ab").id == a
    assert db.resolve_container(conn, b).name == "second"
    with pytest.raises(Conflict, match="multiple"):
        db.resolve_container(conn, "a")
    with pytest.raises(NotFound, match="no such container: zz"):
        db.resolve_container(conn, "zz")
    assert [r.name for r in db.list_containers(conn)] == ["second", "first"]


def test_unique_names_and_rename(tmp_path: Path) -> None:
    conn = db.open_db(tmp_path)
    db.insert_container(conn, _row("1" * 64, "web"))
    with pytest.raises(Conflict, match='"/web" is already in use'):
        db.insert_container(conn, _row("2" * 64, "web"))
    db.insert_container(conn, _row("2" * 64, "db"))
    with pytest.raises(Conflict):
        db.rename_container(conn, "2" * 64, "web")
    db.rename_container(conn, "2" * 64, "cache")
    assert db.resolve_container(conn, "cache").id == "2" * 64


def test_state_updates_and_volume_links(tmp_path: Path) -> None:
    conn = db.open_db(tmp_path)
    cid = "3" * 64
    db.insert_container(conn, _row(cid, "x"))
    assert db.transition(conn, cid, Event.STARTED, pid=42) == Status.RUNNING
    db.update_state(conn, cid, oom_killed=True)
    row = db.get_container(conn, cid)
    assert row is not None
    assert (row.status, row.pid, row.oom_killed) == (Status.RUNNING, 42, True)
    with pytest.raises(ValueError, match="not state fields"):
        db.update_state(conn, cid, name="nope")
    with pytest.raises(ValueError, match="not state fields"):
        db.update_state(conn, cid, status="exited")  # only through transition()
    with pytest.raises(InvalidState, match="is not paused"):
        db.transition(conn, cid, Event.UNPAUSED)
    assert db.get_container(conn, cid).status == Status.RUNNING  # type: ignore[union-attr]
    assert db.transition(conn, "9" * 64, Event.EXITED) is None  # gone
    db.insert_volume(conn, db.VolumeRow("v", "local", "/v/_data", 1.0, {"k": "v"}, {}, False))
    db.link_volume(conn, cid, "v")
    db.link_volume(conn, cid, "v")
    assert db.volume_users(conn, "v") == [cid]
    assert [v.name for v in db.container_volumes(conn, cid)] == ["v"]
    db.delete_container(conn, cid)
    assert db.volume_users(conn, "v") == []  # ON DELETE CASCADE


def test_migration_is_idempotent(tmp_path: Path) -> None:
    db.open_db(tmp_path).close()
    conn = db.open_db(tmp_path)
    v = conn.execute("SELECT version FROM schema_versions WHERE component = 'engine'").fetchone()[0]
    assert v == len(db.MIGRATIONS)


def _image_tables(root: Path) -> str:
    """The image component's tables in the same file, with one image; its id."""
    from portique.image.metadata import ImageDB

    image_id = "sha256:" + "0" * 64
    idb = ImageDB(root)
    with idb.write() as c:
        c.execute(
            "INSERT INTO images(id, manifest_digest, manifest_media_type, config, created,"
            " size, architecture, os, added) VALUES (?, 'm', 't', '{}', '', 0, 'amd64', 'linux', 0)",
            (image_id,),
        )
    idb.close()
    return image_id


def test_the_container_and_its_image_user_row_go_together(tmp_path: Path) -> None:
    image_id = _image_tables(tmp_path)
    conn = db.open_db(tmp_path)
    cid = "a" * 64
    with db.transaction(conn):
        db.insert_container(conn, _row(cid, "one"))
        db.add_image_user(conn, image_id, cid)
    assert [r[0] for r in conn.execute("SELECT container_id FROM image_users")] == [cid]
    with db.transaction(conn):
        db.delete_container(conn, cid)
    assert conn.execute("SELECT count(*) FROM image_users").fetchone()[0] == 0
    # An image removed meanwhile: the create fails as a whole.

    def create() -> None:
        with db.transaction(conn):
            db.insert_container(conn, _row(cid, "one"))
            db.add_image_user(conn, "sha256:" + "f" * 64, cid)

    with pytest.raises(NotFound, match="no such image"):
        create()
    assert db.get_container(conn, cid) is None


def test_image_user_rows_of_gone_containers_are_dropped(tmp_path: Path) -> None:
    image_id = _image_tables(tmp_path)
    conn = db.open_db(tmp_path)
    live, gone = "a" * 64, "b" * 64
    with db.transaction(conn):
        db.insert_container(conn, _row(live, "live"))
        db.add_image_user(conn, image_id, live)
        # What an older portique's rm left when killed between its two transactions.
        conn.execute("INSERT INTO image_users VALUES (?, ?)", (gone, image_id))
    assert db.drop_stale_image_users(conn) == 1
    assert [r[0] for r in conn.execute("SELECT container_id FROM image_users")] == [live]
    assert db.drop_stale_image_users(conn) == 0


def test_stale_image_users_in_a_root_without_images(tmp_path: Path) -> None:
    assert db.drop_stale_image_users(db.open_db(tmp_path)) == 0
