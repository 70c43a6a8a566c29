"""Device creation never touches a host file (issue 9, item 8).

The host's /dev/null was found replaced by a regular file while hostile
layers and config.json files ran. The runtime's device set-up unlinked each
device path and made a new node there, wherever /dev resolved: through a
/dev bound from the host, or an image whose /dev is a symlink into a host
directory bound elsewhere, that was the host's /dev (a concurrent
`> /dev/null` between unlink and mknod leaves a regular file). These tests
play the host's /dev with a directory of their own holding a real null node.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.errors import PortiqueError
from portique.runtime import Runtime
from support.rt_bundle import make_config
from support.rt_run import kv, run_container


def _fake_host_dev(path: Path) -> Path:
    path.mkdir(parents=True)
    os.mknod(path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(path / "null", 0o666)
    (path / "keep").write_text("host file\n")
    return path


def _identity(d: Path) -> dict[str, tuple[int, int, int, int]]:
    out = {}
    for name in sorted(os.listdir(d)):
        st = os.lstat(d / name)
        out[name] = (st.st_ino, st.st_mode, st.st_rdev, st.st_uid)
    return out


def test_dev_bound_from_the_host_is_left_alone(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    """`-v /dev:/dev`: no node of the host's /dev is removed, replaced or added."""
    host_dev = _fake_host_dev(tmp_path / "hostdev")
    before = _identity(host_dev)
    cfg = make_config(["sh", "-c", "echo x > /dev/null; echo null=$?; cat /dev/keep"])
    cfg["mounts"].append({"destination": "/dev", "type": "bind", "source": str(host_dev)})
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 0, out
    assert kv(out)["null"] == "0"
    assert "host file" in out
    assert _identity(host_dev) == before


def test_dev_symlink_into_a_host_bind_fails_create(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    """An image whose /dev is a symlink to host/dev, run with the host's root
    bound at /host (a monitoring agent's usual `-v /:/host`)."""
    host_root = tmp_path / "hostroot"
    host_dev = _fake_host_dev(host_root / "dev")
    before = _identity(host_dev)
    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    (rootfs / "dev").rmdir()
    (rootfs / "dev").symlink_to("host/dev")
    cfg = make_config(["true"])
    cfg["mounts"].append({"destination": "/host", "type": "bind", "source": str(host_root)})
    with pytest.raises(PortiqueError, match=r"cannot create devices in /dev: it is not on"):
        run_container(rt, tmp_path, rootfs, cfg)
    assert _identity(host_dev) == before


def test_device_path_through_a_host_bind_fails_create(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    """linux.devices naming a path inside a bind mount: not the container's to replace."""
    host_dev = _fake_host_dev(tmp_path / "hostdir")
    before = _identity(host_dev)
    cfg = make_config(["true"])
    cfg["mounts"].append({"destination": "/mnt/host", "type": "bind", "source": str(host_dev)})
    cfg["linux"]["devices"] = [
        {"type": "c", "path": "/mnt/host/null", "major": 1, "minor": 3, "fileMode": 0o644}
    ]
    with pytest.raises(PortiqueError, match=r"cannot create devices in /mnt/host"):
        run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert _identity(host_dev) == before


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every uid can traverse (pytest's tmp root is 0700)."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="rt-hostdev-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


def test_user_namespace_binds_only_the_named_device(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, public_dir: Path
) -> None:
    """In a user namespace a device is the host's node bound inside: a
    linux.devices entry naming a host file that is not that device must not
    bind the file into the container."""
    rootfs = public_dir / "rootfs"
    subprocess.run(["cp", "-a", str(busybox_rootfs), str(rootfs)], check=True)
    subprocess.run(["chown", "-R", "100000:100000", str(rootfs)], check=True)
    secret = public_dir / "secret"
    secret.write_text("host secret\n")
    secret.chmod(0o644)
    cfg = make_config(["sh", "-c", f"cat {secret}"])
    cfg["root"]["path"] = str(rootfs)
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["devices"] = [{"type": "c", "path": str(secret), "major": 1, "minor": 3}]
    with pytest.raises(PortiqueError, match=r"is not the character device 1:3"):
        run_container(rt, tmp_path, rootfs, cfg)
    # The real null device still binds.
    cfg["linux"]["devices"] = [{"type": "c", "path": "/dev/null", "major": 1, "minor": 3}]
    cfg["process"]["args"] = ["sh", "-c", "echo x > /dev/null; echo null=$?"]
    code, out = run_container(rt, tmp_path, rootfs, cfg)
    assert (code, kv(out).get("null")) == (0, "0"), out


def test_joined_mount_namespace_is_never_pivoted(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    """A config joining a mount namespace by path (/proc/1/ns/mnt is the
    host's) set up its rootfs and pivot_root in that namespace: every process
    in it found itself inside the container's root."""
    victim = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "60"])
    try:
        ns = Path(f"/proc/{victim.pid}/ns/mnt")
        host_ns = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + 30
        while os.readlink(ns) == host_ns and time.monotonic() < deadline:
            time.sleep(0.01)  # until unshare(1) has made its namespace
        assert os.readlink(ns) != host_ns
        root_before = os.stat(f"/proc/{victim.pid}/root")
        cfg = make_config(["sh", "-c", "echo ok=1"])
        cfg["linux"]["namespaces"] = [
            {"type": "mount", "path": str(ns)} if n["type"] == "mount" else n
            for n in cfg["linux"]["namespaces"]
        ]
        code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
        assert (code, kv(out).get("ok")) == (0, "1"), out
        root_after = os.stat(f"/proc/{victim.pid}/root")
        assert (root_after.st_dev, root_after.st_ino) == (root_before.st_dev, root_before.st_ino)
        assert os.path.exists(f"/proc/{victim.pid}/root/etc/os-release")
    finally:
        victim.kill()
        victim.wait()
