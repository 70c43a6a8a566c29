"""runtime/rootfs.py: a mount plan carried out through the in-memory kernel
(tests/support/fakekernel.py), on a real directory standing for the rootfs,
without root."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from portique.linux import mount as m
from portique.linux.kernel import Kernel
from portique.oci.runtime import Spec, parse_spec
from portique.runtime import mountplan as mp
from portique.runtime.default_spec import default_spec
from portique.runtime.rootfs import BUSY_TRIES, apply
from support.fakekernel import FakeKernel

NULL = os.makedev(1, 3)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    r.mkdir()
    return r


def _spec(mounts: list[dict[str, Any]] | None = None, **linux: Any) -> Spec:
    doc = default_spec()
    if mounts is not None:
        doc["mounts"] = mounts
    doc["linux"].update(linux)
    return parse_spec(doc)


def _null(kernel: FakeKernel, root: Path) -> None:
    """A /dev/null as the device code makes it (the fake remembers it is 1:3)."""
    (root / "dev").mkdir(exist_ok=True)
    fd = os.open(root / "dev", os.O_PATH | os.O_DIRECTORY)
    try:
        kernel.mknod("null", stat.S_IFCHR | 0o666, NULL, fd)
    finally:
        os.close(fd)


def _prepared(kernel: FakeKernel, root: Path, spec: Spec) -> frozenset[int]:
    return apply(mp.plan_mounts(spec, "/bundle", None, False), kernel, str(root))


def test_the_fake_is_a_kernel() -> None:
    kernel: Kernel = FakeKernel()  # mypy checks the protocol here
    assert kernel.mount_flags("/") == 0


def test_default_mounts_land_inside_the_root(root: Path) -> None:
    kernel = FakeKernel()
    info = mp.CgroupInfo("v2", (("", "/sys/fs/cgroup/portique/c"),))
    owned = apply(mp.plan_mounts(_spec(), "/bundle", info, False), kernel, str(root))
    assert kernel.named("mount")[0] == (None, "/", None, m.MS_PRIVATE | m.MS_REC, None)
    made = [(x.target, x.fstype) for x in kernel.mounts]
    r = str(root)
    assert made == [
        (r, "bind"),
        (f"{r}/proc", "proc"),
        (f"{r}/dev", "tmpfs"),
        (f"{r}/dev/pts", "devpts"),
        (f"{r}/dev/shm", "tmpfs"),
        (f"{r}/dev/mqueue", "mqueue"),
        (f"{r}/sys", "sysfs"),
        (f"{r}/sys/fs/cgroup", "cgroup2"),
    ]
    by_target = {x.target: x for x in kernel.mounts}
    # The container's own mounts: its root and each fresh tmpfs.
    assert owned == {by_target[r].id, by_target[f"{r}/dev"].id, by_target[f"{r}/dev/shm"].id}
    assert by_target[f"{r}/dev/pts"].data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    assert all((root / d).is_dir() for d in ("proc", "dev/pts", "sys/fs/cgroup"))


def _plant(root: Path, attack: str) -> None:
    (root / "etc").mkdir()
    (root / "proc").mkdir()
    if attack == "proc symlink inside":
        (root / "proc").rmdir()
        (root / "proc").symlink_to("etc")
    elif attack == "proc symlink to the host":
        (root / "proc").rmdir()
        (root / "proc").symlink_to("/tmp")
    elif attack == "proc a file":
        (root / "proc").rmdir()
        (root / "proc").write_text("not a directory")
    elif attack == "sysfs over procfs":
        (root / "sys").symlink_to("proc")


@pytest.mark.parametrize(
    ("attack", "dest"),
    [
        ("proc symlink inside", "/proc"),
        ("proc symlink to the host", "/proc"),
        ("proc a file", "/proc"),
        ("sysfs over procfs", "/sys"),
    ],
)
def test_proc_and_sysfs_need_a_plain_directory(root: Path, attack: str, dest: str) -> None:
    _plant(root, attack)
    fstype = "proc" if dest == "/proc" else "sysfs"
    spec = _spec([{"destination": dest, "type": fstype, "source": fstype}])
    kernel = FakeKernel()
    with pytest.raises(
        OSError, match=f"mounts\\[0\\] {dest}: {fstype} must be mounted on a plain directory"
    ):
        _prepared(kernel, root, spec)
    assert [x.fstype for x in kernel.mounts] == ["bind"]  # the rootfs only


def test_proc_under_a_symlinked_parent_is_refused(root: Path) -> None:
    (root / "real").mkdir()
    (root / "a").symlink_to("real")
    spec = _spec([{"destination": "/a/proc", "type": "proc", "source": "proc"}])
    with pytest.raises(OSError, match="must be mounted on a plain directory"):
        _prepared(FakeKernel(), root, spec)
    assert not (root / "real/proc").exists()


def test_missing_proc_directory_is_made(root: Path) -> None:
    kernel = FakeKernel()
    _prepared(kernel, root, _spec([{"destination": "/x/proc", "type": "proc", "source": "proc"}]))
    assert (root / "x/proc").is_dir()
    assert kernel.mount_at(root / "x/proc") is not None


def test_bind_target_symlink_stays_inside_the_root(root: Path, tmp_path: Path) -> None:
    (root / "data").symlink_to("/../../outside")
    src = tmp_path / "src"
    src.mkdir()
    kernel = FakeKernel()
    spec = _spec([{"destination": "/data", "type": "bind", "source": str(src)}])
    _prepared(kernel, root, spec)
    bind = kernel.mounts[-1]
    assert (bind.source, bind.target) == (str(src), str(root / "outside"))
    assert not (tmp_path / "outside").exists()


def test_finish_masks_files_with_the_null_device_and_dirs_with_tmpfs(root: Path) -> None:
    kernel = FakeKernel()
    _null(kernel, root)
    (root / "proc/sys").mkdir(parents=True)
    (root / "proc/kcore").write_text("")
    (root / "sys/firmware").mkdir(parents=True)
    spec = _spec(maskedPaths=["/proc/kcore", "/sys/firmware", "/proc/timer_list"])
    masks = [s for s in mp.plan_finish(spec) if isinstance(s, mp.MaskPath)]
    apply(masks, kernel, str(root))
    kcore = kernel.mount_at(root / "proc/kcore")
    firmware = kernel.mount_at(root / "sys/firmware")
    assert kcore is not None
    assert (kcore.fstype, kcore.source) == ("bind", str(root / "dev/null"))
    assert firmware is not None
    assert (firmware.fstype, firmware.flags, firmware.data) == ("tmpfs", m.MS_RDONLY, "size=0k")
    # A path the root lacks is skipped.
    assert len(kernel.mounts) == 2


@pytest.mark.parametrize("fake_null", ["symlink", "file", "wrong device"])
def test_masking_refuses_a_null_device_that_is_not_one(root: Path, fake_null: str) -> None:
    kernel = FakeKernel()
    (root / "dev").mkdir()
    (root / "etc").mkdir()
    (root / "etc/secret").write_text("x")
    if fake_null == "symlink":
        (root / "dev/null").symlink_to("/etc/secret")
    elif fake_null == "file":
        (root / "dev/null").write_text("")
    else:
        fd = os.open(root / "dev", os.O_PATH)
        kernel.mknod("null", stat.S_IFCHR | 0o666, os.makedev(1, 5), fd)
        os.close(fd)
    (root / "proc").mkdir()
    (root / "proc/kcore").write_text("")
    steps = [mp.MaskPath("linux.maskedPaths /proc/kcore", "/proc/kcore")]
    with pytest.raises(
        OSError, match="/proc/kcore: /dev/null in the container is not the null device"
    ):
        apply(steps, kernel, str(root))
    assert kernel.mounts == []


def test_readonly_paths_and_root_keep_the_flags_the_kernel_locked(root: Path) -> None:
    kernel = FakeKernel()
    (root / "proc/sys").mkdir(parents=True)
    # A root whose mount has nosuid and nodev (locked on, in a user namespace).
    kernel.mount("tmpfs", str(root), "tmpfs", m.MS_NOSUID | m.MS_NODEV)
    steps: list[mp.Step] = [
        mp.ReadOnlyPath("linux.readonlyPaths /proc/sys", "/proc/sys"),
        mp.ReadOnlyPath("linux.readonlyPaths /proc/bus", "/proc/bus"),  # missing: skipped
        mp.ReadOnlyRoot("root.readonly"),
    ]
    apply(steps, kernel, str(root))
    calls = kernel.named("mount")[1:]
    locked = m.MS_NOSUID | m.MS_NODEV
    sysdir = str(root / "proc/sys")
    assert calls == [
        (sysdir, sysdir, None, m.MS_BIND | m.MS_REC, None),
        (None, sysdir, None, m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY | locked, None),
        (None, str(root), None, m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY | locked, None),
    ]


def test_a_busy_readonly_remount_is_retried_a_bounded_number_of_times(root: Path) -> None:
    (root / "proc/sys").mkdir(parents=True)
    steps = [mp.ReadOnlyPath("linux.readonlyPaths /proc/sys", "/proc/sys")]

    def remount(args: tuple[object, ...]) -> bool:
        flags = args[3]
        return isinstance(flags, int) and bool(flags & m.MS_REMOUNT)

    kernel = FakeKernel()
    kernel.fail("mount", errno.EBUSY, times=2, when=remount)
    apply(steps, kernel, str(root))
    assert sum(1 for a in kernel.named("mount") if remount(a)) == 3
    assert kernel.mounts[-1].flags == m.MS_RDONLY

    kernel = FakeKernel()
    kernel.fail("mount", errno.EBUSY, times=BUSY_TRIES + 1, when=remount)
    with pytest.raises(
        OSError, match=r"linux\.readonlyPaths /proc/sys: mount: Device or resource busy"
    ):
        apply(steps, kernel, str(root))
    assert sum(1 for a in kernel.named("mount") if remount(a)) == BUSY_TRIES


def test_ebusy_on_a_fresh_mount_is_not_retried(root: Path) -> None:
    kernel = FakeKernel()
    kernel.fail("mount", errno.EBUSY, when=lambda a: a[2] == "mqueue")
    spec = _spec([{"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"}])
    with pytest.raises(OSError, match="mounts\\[0\\] /dev/mqueue: mount: Device or resource busy"):
        _prepared(kernel, root, spec)
    assert sum(1 for a in kernel.named("mount") if a[2] == "mqueue") == 1


@pytest.mark.parametrize("err", [errno.EBUSY, errno.EPERM])
def test_a_refused_cgroup2_mount_binds_the_containers_own_cgroup(root: Path, err: int) -> None:
    kernel = FakeKernel()
    kernel.fail("mount", err, when=lambda a: a[2] == "cgroup2")
    own = "/sys/fs/cgroup"  # stands for the container's directory (a real one here)
    spec = _spec(
        [
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["ro", "nosuid"],
            }
        ]
    )
    apply(mp.plan_mounts(spec, "/b", mp.CgroupInfo("v2", (("", own),)), False), kernel, str(root))
    bind = kernel.mount_at(root / "sys/fs/cgroup")
    assert bind is not None
    assert (bind.fstype, bind.source) == ("bind", own)
    assert bind.flags == m.MS_RDONLY | m.MS_NOSUID


def test_other_mount_errors_name_the_field(root: Path) -> None:
    kernel = FakeKernel()
    kernel.fail("mount", errno.EINVAL, when=lambda a: a[2] == "tmpfs")
    spec = _spec(
        [{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["size=oops"]}]
    )
    with pytest.raises(OSError, match=r"mounts\[0\] /dev: mount: Invalid argument$"):
        _prepared(kernel, root, spec)


def test_sysfs_refused_in_a_user_namespace_binds_the_hosts_read_only(root: Path) -> None:
    kernel = FakeKernel()
    kernel.fail("mount", errno.EPERM, when=lambda a: a[2] == "sysfs")
    spec = _spec(
        [{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid"]}]
    )
    apply(mp.plan_mounts(spec, "/b", None, True), kernel, str(root))
    bind = kernel.mount_at(root / "sys")
    assert bind is not None
    assert (bind.fstype, bind.source) == ("bind", "/sys")
    assert bind.flags == m.MS_RDONLY | m.MS_NOSUID


def test_idmapped_mount_is_attached_then_made_read_only(root: Path, tmp_path: Path) -> None:
    kernel = FakeKernel()
    src = tmp_path / "vol"
    src.mkdir()
    tree = kernel.open_tree(str(src))
    steps = [mp.AttachIdmapped("mounts[0] /vol", "/vol", 0, m.MS_RDONLY)]
    apply(steps, kernel, str(root), {0: tree})
    assert kernel.named("move_mount") == [(str(src), str(root / "vol"))]
    attached = kernel.mount_at(root / "vol")
    assert attached is not None
    assert attached.flags == m.MS_RDONLY
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(tree)  # apply closed it
