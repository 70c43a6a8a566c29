"""Issue 9, item 5: images that could never be deleted.

`rm -f` deleted the container row and its image_users row in two transactions;
a crash in between left a row for a container that no longer exists, and from
then on `rmi` refused, `rmi -f` exited 0 but kept the image, and `system prune
-a` reclaimed nothing. `run --rm` also returned before the row was dropped, so
an `rmi` right after failed about one time in three.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.crash_engine import Engine, leaks


def victim(e: Engine, busybox_tar: Path, n: int = 0) -> str:
    """An image of its own (busybox under another config), tagged victim:<n>; its id."""
    e.ok(
        "import",
        "--change",
        f"LABEL n={n}",
        "--change",
        'CMD ["/bin/sh"]',
        str(busybox_tar),
        f"victim:{n}",
    )
    return e.ok("image", "inspect", "-f", "{{.Id}}", f"victim:{n}").strip()


def image_exists(e: Engine, image_id: str) -> bool:
    return e("image", "inspect", image_id).returncode == 0


def crash_between_the_deletes(e: Engine, cid: str) -> None:
    """The state an older `rm -f` killed between its two transactions left: the
    container's row, files and mounts gone, its image_users row still there."""
    e.ok("stop", "-t", "0", cid)
    with e.db() as conn:
        conn.execute("DELETE FROM containers WHERE id = ?", (cid,))
    shutil.rmtree(e.root / "containers" / cid)
    with e.db() as conn:
        assert conn.execute("SELECT count(*) FROM image_users").fetchone()[0] == 1


@pytest.mark.parametrize(
    "remove",
    [["rmi", "victim:0"], ["rmi", "-f", "victim:0"], ["system", "prune", "-a", "-f"]],
    ids=["rmi", "rmi-f", "system-prune-a"],
)
def test_an_image_whose_container_is_gone_can_be_removed(
    engine: Engine, busybox_tar: Path, remove: list[str]
) -> None:
    image_id = victim(engine, busybox_tar)
    cid = engine.ok("run", "-d", "victim:0", "sleep", "600").strip()
    crash_between_the_deletes(engine, cid)
    engine.ok(*remove)
    assert not image_exists(engine, image_id)
    with engine.db() as conn:
        assert conn.execute("SELECT count(*) FROM image_users").fetchone()[0] == 0


def test_rmi_force_of_an_image_in_use_fails_and_changes_nothing(
    engine: Engine, busybox_tar: Path
) -> None:
    image_id = victim(engine, busybox_tar)
    engine.ok("create", "--name", "user", "victim:0")
    for ref in ("victim:0", image_id):
        p = engine("rmi", "-f", ref)
        assert p.returncode != 0
        assert "cannot be forced" in p.stderr
        assert "image is being used by container" in p.stderr or "is using its" in p.stderr
        assert len(p.stderr.splitlines()) == 1
    assert engine.ok("image", "inspect", "-f", "{{.RepoTags}}", image_id).strip() == "[victim:0]"
    engine.ok("rm", "user")
    assert "Deleted: " + image_id in engine.ok("rmi", "-f", "victim:0")


def test_rmi_right_after_run_rm_succeeds(engine: Engine, busybox_tar: Path) -> None:
    # It used to lose the race against the monitor's clean-up about one time in three.
    for n in range(15):
        image_id = victim(engine, busybox_tar, n)
        engine.ok("run", "--rm", "--network", "none", f"victim:{n}", "true")
        out = engine.ok("rmi", f"victim:{n}")
        assert f"Deleted: {image_id}" in out, f"run {n}"


@pytest.mark.parametrize(
    ("point", "command"),
    [
        ("rm.row-deleted", ["rm", "-f", "user"]),
        ("monitor.autoremove-row-deleted", ["run", "--rm", "--name", "user", "victim:0", "true"]),
    ],
    ids=["rm", "run-rm"],
)
def test_rmi_after_a_killed_removal(
    engine: Engine, busybox_tar: Path, point: str, command: list[str]
) -> None:
    image_id = victim(engine, busybox_tar)
    if command[0] == "rm":
        engine.ok("run", "-d", "--name", "user", "victim:0", "sleep", "600")
    engine.note_ids()
    hit = engine.root.parent / "hit"
    engine(*command, fault=point, hit=hit)
    assert hit.exists()
    engine.note_ids()
    out = engine.ok("rmi", "victim:0")
    assert f"Deleted: {image_id}" in out
    engine.ok("system", "prune", "-a", "-f")
    assert leaks(engine) == []
