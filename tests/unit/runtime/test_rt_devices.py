"""runtime/devices.py: the device plan, and device nodes made through the
in-memory kernel (tests/support/fakekernel.py) in a real directory, without root."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from portique.linux import mount as m
from portique.oci.runtime import Device, Spec, parse_spec
from portique.runtime import devices
from portique.runtime.default_spec import default_spec
from support.fakekernel import FakeKernel


def _spec(
    mounts: list[dict[str, Any]] | None = None, devs: list[dict[str, Any]] | None = None
) -> Spec:
    doc = default_spec()
    if mounts is not None:
        doc["mounts"] = mounts
    if devs is not None:
        doc["linux"]["devices"] = devs
    return parse_spec(doc)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "dev").mkdir(parents=True)
    return r


def _owned(kernel: FakeKernel, root: Path, *tmpfs: str) -> frozenset[int]:
    """The rootfs bound onto itself and fresh tmpfs mounts at `tmpfs`, as
    rootfs.apply leaves them; their ids."""
    kernel.mount(str(root), str(root), None, m.MS_BIND | m.MS_REC)
    for path in tmpfs:
        kernel.mount("tmpfs", str(root / path.lstrip("/")), "tmpfs", 0, "mode=755")
    return frozenset(x.id for x in kernel.mounts)


def _device(path: Path, kernel: FakeKernel) -> tuple[str, int, int]:
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    try:
        st = kernel.fstat(fd)
    finally:
        os.close(fd)
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else "?"
    return kind, st.st_rdev, stat.S_IMODE(st.st_mode)


def test_plan_lists_defaults_then_spec_devices_links_and_shm() -> None:
    spec = _spec(devs=[{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229}])
    steps = devices.plan(spec, userns=False)
    nodes = [s for s in steps if isinstance(s, devices.Node)]
    assert [n.device.path for n in nodes] == [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/fuse",
    ]
    assert not any(n.bind_host for n in nodes)
    assert devices.Link("pts/ptmx", "/dev/ptmx") in steps
    assert steps[-1] == devices.Dir("/dev/shm", 0o1777)
    assert all(n.bind_host for n in devices.plan(spec, userns=True) if isinstance(n, devices.Node))


def test_plan_is_empty_when_dev_is_bound_from_elsewhere() -> None:
    spec = _spec([{"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}])
    assert devices.plan(spec, userns=False) == []


def test_nodes_links_and_shm_are_made_with_their_modes(root: Path) -> None:
    kernel = FakeKernel()
    owned = _owned(kernel, root, "/dev")
    spec = _spec(
        devs=[
            {
                "type": "b",
                "path": "/dev/loop0",
                "major": 7,
                "minor": 0,
                "fileMode": 0o600,
                "uid": 5,
                "gid": 6,
            },
            {"type": "p", "path": "/dev/pipe"},
        ]
    )
    old = os.umask(0o077)  # mknod and mkdir are filtered by the umask: modes must not be
    try:
        devices.create_devices(str(root), devices.plan(spec, False), owned, kernel)
    finally:
        os.umask(old)
    assert _device(root / "dev/null", kernel) == ("c", os.makedev(1, 3), 0o666)
    assert _device(root / "dev/tty", kernel) == ("c", os.makedev(5, 0), 0o666)
    assert _device(root / "dev/loop0", kernel) == ("b", os.makedev(7, 0), 0o600)
    assert stat.S_ISFIFO(os.lstat(root / "dev/pipe").st_mode)
    assert kernel.owners[str(root / "dev/loop0")] == (5, 6)
    assert os.readlink(root / "dev/fd") == "/proc/self/fd"
    assert os.readlink(root / "dev/ptmx") == "pts/ptmx"
    assert stat.S_IMODE(os.stat(root / "dev/shm").st_mode) == 0o1777
    assert len(kernel.named("mknod")) == 7


def test_whatever_the_image_put_there_is_replaced_not_followed(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "host-null"
    outside.write_text("host file")
    (root / "dev/null").symlink_to(outside)
    (root / "dev/zero").write_text("image file")
    kernel = FakeKernel()
    owned = _owned(kernel, root)
    devices.create_devices(str(root), devices.plan(_spec(), False), owned, kernel)
    assert _device(root / "dev/null", kernel)[:2] == ("c", os.makedev(1, 3))
    assert _device(root / "dev/zero", kernel)[:2] == ("c", os.makedev(1, 5))
    assert outside.read_text() == "host file"


def test_in_a_user_namespace_the_hosts_nodes_are_bound(root: Path) -> None:
    kernel = FakeKernel()
    owned = _owned(kernel, root, "/dev")
    steps = [devices.Node(Device("c", "/dev/null", 1, 3, 0o666, 0, 0), True)]
    devices.create_devices(str(root), steps, owned, kernel)
    bind = kernel.mount_at(root / "dev/null")
    assert bind is not None
    assert (bind.fstype, bind.source) == ("bind", "/dev/null")
    assert kernel.named("mknod") == []
    assert kernel.owners == {}  # the host's node is not ours to chown


def test_a_host_path_that_is_not_the_device_is_not_bound(root: Path) -> None:
    kernel = FakeKernel()
    owned = _owned(kernel, root)
    # /dev/zero on the host is 1:5, not the 1:3 this entry claims.
    steps = [devices.Node(Device("c", "/dev/zero", 1, 3, 0o666, 0, 0), True)]
    with pytest.raises(OSError, match="host /dev/zero is not the character device 1:3"):
        devices.create_devices(str(root), steps, owned, kernel)
    assert kernel.mount_at(root / "dev/zero") is None


def test_devices_are_never_made_through_a_bind_mount(root: Path, tmp_path: Path) -> None:
    """An image whose /dev is a symlink into a host directory bound in: the
    nodes would land on the host."""
    host_dir = tmp_path / "hostdir"
    host_dir.mkdir()
    (host_dir / "null").write_text("the host's")
    (root / "dev").rmdir()
    (root / "host").mkdir()
    (root / "dev").symlink_to("host")
    kernel = FakeKernel()
    owned = _owned(kernel, root)
    kernel.mount(str(host_dir), str(root / "host"), None, m.MS_BIND)  # a volume
    with pytest.raises(
        OSError, match="cannot create devices in /dev: it is not on the container's root"
    ):
        devices.create_devices(str(root), devices.plan(_spec(), False), owned, kernel)
    assert (host_dir / "null").read_text() == "the host's"
    assert kernel.named("mknod") == []
