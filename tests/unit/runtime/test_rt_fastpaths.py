"""The runtime's short cuts on its start and delete paths do what the long
way did: make_in_root from an existing parent, mount_id by a bare read,
the cgroup file helpers (read_file, write_lines, remove_tree of a leaf),
the cpuset copy and the device directory checked once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portique.linux import mount as m
from portique.linux.fs import O_PATH
from portique.oci.runtime import Device
from portique.runtime import devices
from portique.runtime.cgroups import base, v1
from portique.runtime.paths import make_in_root
from support.fakekernel import FakeKernel


def _real(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "sys/fs/cgroup").mkdir(parents=True)
    return r


def _root_fd(root: Path) -> int:
    return os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def test_make_in_root_makes_the_last_component_in_an_existing_parent(root: Path) -> None:
    rfd = _root_fd(root)
    try:
        assert _real(make_in_root(rfd, "/sys/fs/cgroup/cpu", "dir")) == str(
            root / "sys/fs/cgroup/cpu"
        )
        assert _real(make_in_root(rfd, "/sys/fs/cgroup/x/y/z", "dir")) == str(
            root / "sys/fs/cgroup/x/y/z"
        )
        assert _real(make_in_root(rfd, "/sys/fs/file", "file")) == str(root / "sys/fs/file")
        assert (root / "sys/fs/file").is_file()
    finally:
        os.close(rfd)


def test_make_in_root_through_a_symlinked_parent_stays_inside(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "host"
    outside.mkdir()
    (root / "etc").mkdir()
    # An absolute symlink as the parent: resolved in the root, not on the host.
    (root / "link").symlink_to(str(tmp_path / "host"))
    (root / "up").symlink_to("../../host")
    rfd = _root_fd(root)
    try:
        for parent in ("link", "up"):
            made = _real(make_in_root(rfd, f"/{parent}/target", "dir"))
            assert made.startswith(str(root) + "/")
        # A dangling symlink as the leaf: its target is made, inside the root.
        (root / "etc/dangling").symlink_to("/made-by-link")
        assert _real(make_in_root(rfd, "/etc/dangling", "dir")) == str(root / "made-by-link")
    finally:
        os.close(rfd)
    assert list(outside.iterdir()) == []


def test_make_in_root_under_a_file_fails_as_the_walk_did(root: Path) -> None:
    (root / "afile").write_text("")
    rfd = _root_fd(root)
    try:
        with pytest.raises(NotADirectoryError):
            make_in_root(rfd, "/afile/sub", "dir")
    finally:
        os.close(rfd)


def test_mount_id_matches_fdinfo(tmp_path: Path) -> None:
    fd = os.open(tmp_path, O_PATH | os.O_CLOEXEC)
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
            want = next(int(x.split()[1]) for x in f if x.startswith(b"mnt_id:"))
        assert m.mount_id(fd) == want
    finally:
        os.close(fd)


def test_read_file_decodes_as_text_mode_did(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"0-1\r\nx\ry\xff\n")
    assert base.read_file(tmp_path, "f") == "0-1\nx\ny\ufffd\n"
    (tmp_path / "big").write_bytes(b"1 2\n" * 40000)  # more than one read
    assert base.read_file(tmp_path, "big") == "1 2\n" * 40000
    with pytest.raises(base.CgroupError, match="cannot read missing in"):
        base.read_file(tmp_path, "missing")


def test_write_lines_writes_each_value_with_its_own_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "devices.allow").touch()
    seen: list[bytes] = []
    real = os.write

    def write(fd: int, data: bytes) -> int:
        seen.append(bytes(data))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    base.write_lines(tmp_path, "devices.allow", ["c 1:3 rwm", "c 136:* rwm"])
    assert seen == [b"c 1:3 rwm", b"c 136:* rwm"]
    with pytest.raises(base.CgroupError, match="cannot write devices"):
        base.write_lines(tmp_path, "devices.deny", ["a"])


def test_remove_tree_of_a_leaf_is_one_rmdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaf = tmp_path / "leaf"
    leaf.mkdir()
    calls: list[str] = []
    real = os.rmdir

    def rmdir(p: str) -> None:
        calls.append(p)
        real(p)

    monkeypatch.setattr(os, "rmdir", rmdir)
    base.remove_tree(leaf)
    assert calls == [str(leaf)]
    assert not leaf.exists()
    base.remove_tree(leaf)  # missing is fine
    (tmp_path / "file").touch()
    base.remove_tree(tmp_path / "file")  # not a directory: left, as before
    assert (tmp_path / "file").exists()


def test_cpuset_is_copied_down_reading_each_level_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = tmp_path / "cpuset"
    made = [top / "portique", top / "portique/c1"]
    for d in (top, *made):
        d.mkdir(exist_ok=True)
        (d / "cpuset.cpus").write_text("\n")
        (d / "cpuset.mems").write_text("\n")
    (top / "cpuset.cpus").write_text("0-3\n")
    (top / "cpuset.mems").write_text("0\n")
    reads: list[tuple[str, str]] = []
    real = base.read_file

    def read_file(d: str, name: str) -> str:
        reads.append((os.path.relpath(d, tmp_path), name))
        return real(d, name)

    monkeypatch.setattr(v1, "read_file", read_file)
    v1._init_cpuset(str(top), [str(d) for d in made])
    for d in made:
        assert (d / "cpuset.cpus").read_text() == "0-3"
        assert (d / "cpuset.mems").read_text() == "0"
    # Each new level is read once; the top's values once, for the first level.
    assert sorted(reads) == sorted(
        [
            ("cpuset/portique", "cpuset.cpus"),
            ("cpuset/portique", "cpuset.mems"),
            ("cpuset", "cpuset.cpus"),
            ("cpuset", "cpuset.mems"),
            ("cpuset/portique/c1", "cpuset.cpus"),
            ("cpuset/portique/c1", "cpuset.mems"),
        ]
    )


def test_a_set_cpuset_level_is_kept_and_handed_down(tmp_path: Path) -> None:
    top = tmp_path / "cpuset"
    mid, leaf = top / "portique", top / "portique/c1"
    for d, cpus in ((top, "0-3\n"), (mid, "1\n"), (leaf, "\n")):
        d.mkdir(exist_ok=True)
        (d / "cpuset.cpus").write_text(cpus)
        (d / "cpuset.mems").write_text("0\n")
    v1._init_cpuset(str(top), [str(mid), str(leaf)])
    assert (mid / "cpuset.cpus").read_text() == "1\n"  # already set: untouched
    assert (leaf / "cpuset.cpus").read_text() == "1"


def test_the_dev_directory_is_resolved_and_checked_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "dev").mkdir()
    kernel = FakeKernel()
    kernel.mount(str(root), str(root), None, m.MS_BIND | m.MS_REC)
    kernel.mount("tmpfs", str(root / "dev"), "tmpfs", 0, "mode=755")
    owned = frozenset(x.id for x in kernel.mounts)
    checks: list[str] = []
    real = kernel.mount_id

    def mount_id(fd: int) -> int:
        checks.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(kernel, "mount_id", mount_id)
    steps: list[devices.DeviceStep] = [
        devices.Node(Device("c", "/dev/null", 1, 3, 0o666, 0, 0), False),
        devices.Node(Device("c", "/dev/net/tun", 10, 200, 0o666, 0, 0), False),
        devices.Node(Device("c", "/dev/zero", 1, 5, 0o666, 0, 0), False),
        devices.Link("/proc/self/fd", "/dev/fd"),
    ]
    devices.create_devices(str(root), steps, owned, kernel)
    assert checks.count(str(root / "dev")) == 2  # /dev itself; /dev before making net
    assert checks.count(str(root / "dev/net")) == 1
    assert len(kernel.named("mknod")) == 3
    assert os.readlink(root / "dev/fd") == "/proc/self/fd"


def test_mkdir_path_lists_every_level_whether_made_now_or_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [str(tmp_path / "portique"), str(tmp_path / "portique/c1")]
    assert base.mkdir_path(tmp_path, "/portique/c1") == made  # the parent is new
    calls: list[str] = []
    real = os.mkdir

    def mkdir(p: str, mode: int = 0o777) -> None:
        calls.append(p)
        real(p, mode)

    monkeypatch.setattr(os, "mkdir", mkdir)
    # The parent is there: the leaf alone is made, and both are listed (the
    # cpuset copy starts from the top).
    assert base.mkdir_path(tmp_path, "/portique/c2") == [made[0], str(tmp_path / "portique/c2")]
    assert calls == [str(tmp_path / "portique/c2")]
    assert base.mkdir_path(tmp_path, "/portique/c2") == [made[0], str(tmp_path / "portique/c2")]
    (tmp_path / "file").touch()
    with pytest.raises(base.CgroupError, match="cannot create cgroup"):
        base.mkdir_path(tmp_path, "/file/c3")


def test_make_in_root_creates_files_dirs_and_dangling_link_targets(root: Path) -> None:
    (root / "m").symlink_to("/real")  # dangling, in the middle of the path
    (root / "etc").mkdir()
    (root / "etc/f").symlink_to("../made-file")  # dangling, the file itself
    rfd = _root_fd(root)
    try:
        assert _real(make_in_root(rfd, "/a/b/c", "file")) == str(root / "a/b/c")
        assert (root / "a/b").is_dir()
        assert (root / "a/b/c").is_file()
        assert _real(make_in_root(rfd, "/m/x", "dir")) == str(root / "real/x")
        assert _real(make_in_root(rfd, "/etc/f", "file")) == str(root / "made-file")
        assert (root / "made-file").is_file()
        # Already there: opened as it is, nothing made.
        assert _real(make_in_root(rfd, "/a/b/c", "dir")) == str(root / "a/b/c")
    finally:
        os.close(rfd)
