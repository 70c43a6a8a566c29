"""Host detection, hierarchy discovery and cgroupsPath rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from portique.errors import InvalidArgument, Unsupported
from portique.runtime.cgroups import detect, hierarchies, open_manager, resolve_path
from support.cgfake import FakeV1, populate_v2


def _v1_dirs(root: Path, names: tuple[str, ...]) -> None:
    for n in names:
        (root / n).mkdir(parents=True)
        (root / n / "cgroup.procs").touch()


def test_detect_pure_v2(tmp_path: Path) -> None:
    populate_v2(tmp_path, leaf=False)
    assert detect(tmp_path) == "v2"


def test_detect_hybrid_with_hugetlb_in_unified(tmp_path: Path) -> None:
    _v1_dirs(tmp_path, ("cpu", "memory", "pids", "freezer"))
    populate_v2(tmp_path / "unified", "hugetlb", leaf=False)
    assert detect(tmp_path) == "v1"


def test_detect_hybrid_with_empty_unified(tmp_path: Path) -> None:
    _v1_dirs(tmp_path, ("cpu", "memory"))
    populate_v2(tmp_path / "unified", "", leaf=False)
    assert detect(tmp_path) == "v1"


def test_detect_pure_v1(tmp_path: Path) -> None:
    _v1_dirs(tmp_path, ("cpu,cpuacct", "memory", "systemd"))
    assert detect(tmp_path) == "v1"


def test_detect_nothing_mounted(tmp_path: Path) -> None:
    with pytest.raises(Unsupported, match="no cgroup filesystem"):
        detect(tmp_path)


def test_hierarchies_from_mountinfo(fake_v1: FakeV1) -> None:
    got = dict(hierarchies(fake_v1.root, mountinfo=fake_v1.mountinfo))
    r = fake_v1.root
    assert got == {
        r / "cpu,cpuacct": ("cpu", "cpuacct"),
        r / "cpuset": ("cpuset",),
        r / "memory": ("memory",),
        r / "devices": ("devices",),
        r / "freezer": ("freezer",),
        r / "blkio": ("blkio",),
        r / "pids": ("pids",),
        r / "systemd": ("name=systemd",),
    }


def test_hierarchies_ignore_other_roots_and_flags(tmp_path: Path) -> None:
    mi = tmp_path / "mountinfo"
    mi.write_text(
        "30 25 0:26 / /sys/fs/cgroup/cpuset rw shared:1 - cgroup cgroup rw,cpuset,clone_children\n"
        "31 25 0:27 / /elsewhere/memory rw shared:2 - cgroup cgroup rw,memory\n"
        "32 25 0:28 / /sys/fs/cgroup/net\\040cls rw shared:3 - cgroup cgroup rw,net_cls\n"
        "33 25 0:29 / /sys/fs/cgroup/x rw - cgroup cgroup rw,xattr,release_agent=/bin/ra,pids\n"
    )
    assert hierarchies(Path("/sys/fs/cgroup"), mountinfo=mi) == [
        (Path("/sys/fs/cgroup/cpuset"), ("cpuset",)),
        (Path("/sys/fs/cgroup/net cls"), ("net_cls",)),
        (Path("/sys/fs/cgroup/x"), ("pids",)),
    ]


def test_the_real_host_is_detected() -> None:
    # Whatever this machine mounts, detect() decides without refusing it.
    assert detect() in ("v1", "v2")


@pytest.mark.parametrize(
    ("given", "cid", "want"),
    [
        (None, "abc", "/portique/abc"),
        ("", "abc", "/portique/abc"),
        ("mygroup/abc", "abc", "/portique/mygroup/abc"),
        ("/default/abc", "abc", "/default/abc"),
        ("/a//b/", "x", "/a/b"),
    ],
)
def test_resolve_path(given: str | None, cid: str, want: str) -> None:
    assert resolve_path(given, cid) == want


@pytest.mark.parametrize(
    "bad", ["/portique/../../etc", "../x", "a/../../b", "/", "/a\x00b", "/" + "a/" * 40]
)
def test_resolve_path_rejects_escapes(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="cgroupsPath"):
        resolve_path(bad, "x")


def test_systemd_syntax_is_refused(tmp_path: Path) -> None:
    populate_v2(tmp_path, leaf=False)
    with pytest.raises(InvalidArgument, match="systemd cgroup driver"):
        open_manager("system.slice:docker:abc", "abc", root=tmp_path)


def test_bad_container_id_as_cgroup_name() -> None:
    with pytest.raises(InvalidArgument, match="container id"):
        resolve_path(None, "..")
