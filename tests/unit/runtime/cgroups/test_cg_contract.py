"""One contract, both drivers: what the runtime may rely on whichever host it runs on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from portique.oci.resources import parse_resources
from portique.runtime.cgroups import CgroupManager, open_manager
from support.cgfake import FakeV1, populate_v1, populate_v2

Factory = Callable[[str], CgroupManager]


@pytest.fixture(params=["v1", "v2"])
def factory(request: pytest.FixtureRequest) -> Factory:
    """A manager on a fake tree whose dirs already hold the kernel's files."""
    # Only one fake per test: both live at tmp_path/cg.
    fake = request.getfixturevalue("fake_v1" if request.param == "v1" else "fake_v2")

    def make(cid: str) -> CgroupManager:
        if isinstance(fake, FakeV1):
            fake_v1 = fake
            populate_v1(fake_v1.root, f"portique/{cid}")
            for d in (
                fake_v1.root / "cpuset" / "portique",
                fake_v1.root / "cpuset" / "portique" / cid,
            ):
                (d / "cpuset.cpus").write_text("0\n")
                (d / "cpuset.mems").write_text("0\n")
            (fake_v1.root / "freezer" / "portique" / cid / "freezer.state").write_text("THAWED")
            return open_manager(None, cid, root=fake_v1.root, mountinfo=fake_v1.mountinfo)
        fake_v2: Path = fake
        populate_v2(fake_v2 / "portique", leaf=False)
        populate_v2(fake_v2 / "portique" / cid)
        (fake_v2 / "portique" / cid / "cgroup.events").write_text("populated 0\nfrozen 0\n")
        return open_manager(None, cid, root=fake_v2)

    return make


def test_identity(factory: Factory) -> None:
    mgr = factory("c1")
    assert mgr.version in ("v1", "v2")
    assert mgr.path == "/portique/c1"
    assert mgr.dirs()
    assert all(d.name == "c1" for d in mgr.dirs().values())


def test_create_apply_join_destroy(factory: Factory) -> None:
    mgr = factory("c1")
    mgr.create()
    assert mgr.exists()
    mgr.apply(
        parse_resources(
            {"memory": {"limit": 1 << 26}, "cpu": {"shares": 512}, "pids": {"limit": 9}}, "r"
        )
    )
    mgr.add_process(1234)
    assert mgr.pids() == [1234]
    assert mgr.oom_kill_count() == 0
    stats = mgr.stats()
    assert {"cpu", "memory", "pids", "blkio"} <= set(stats)


def test_freeze_reports_frozen(factory: Factory) -> None:
    mgr = factory("c1")
    if mgr.version == "v2":
        # The fake kernel: cgroup.events follows what cgroup.freeze asks.
        events = mgr.dirs()[""] / "cgroup.events"
        events.write_text("populated 1\nfrozen 1\n")
    mgr.freeze()
    assert mgr.is_frozen()
    if mgr.version == "v2":
        events.write_text("populated 1\nfrozen 0\n")
    mgr.thaw()
    assert not mgr.is_frozen()


def test_destroy_is_idempotent_and_leaves_the_parent(tmp_path: Path, factory: Factory) -> None:
    mgr = factory("gone")
    # Real cgroupfs removes a dir with its interface files; plain dirs need emptying.
    for d in mgr.dirs().values():
        for f in d.iterdir():
            f.unlink()
    mgr.destroy()
    assert not mgr.exists()
    mgr.destroy()
    assert all(d.parent.is_dir() for d in mgr.dirs().values())
