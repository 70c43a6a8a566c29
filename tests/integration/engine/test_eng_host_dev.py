"""`portique run` never replaces a host device node (issue 9, item 8).

`run -v /dev:/dev` unlinked and re-made every default device of the host's
/dev; an image whose /dev is a symlink to host/dev did the same when run
with the host's root bound at /host. A directory of the test plays the
host's /dev here, with a real null node in it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

from support.rootfs import make_busybox_rootfs


def _fake_dev(path: Path) -> Path:
    path.mkdir(parents=True)
    os.mknod(path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(path / "null", 0o666)
    return path


def _identity(d: Path) -> dict[str, tuple[int, int, int]]:
    return {
        name: (st.st_ino, st.st_mode, st.st_rdev)
        for name in sorted(os.listdir(d))
        for st in [os.lstat(d / name)]
    }


def test_run_with_host_dev_bound_keeps_its_nodes(pq: Any, tmp_path: Path) -> None:
    dev = _fake_dev(tmp_path / "dev")
    before = _identity(dev)
    r = pq("run", "--rm", "-v", f"{dev}:/dev", "busybox", "sh", "-c", "echo x > /dev/null; echo $?")
    assert (r.returncode, r.stdout) == (0, "0\n"), r.stderr
    assert _identity(dev) == before


def test_image_dev_symlink_cannot_reach_a_host_bind(pq: Any, tmp_path: Path) -> None:
    rootfs = make_busybox_rootfs(tmp_path / "rootfs")
    (rootfs / "dev").rmdir()
    (rootfs / "dev").symlink_to("host/dev")
    tar_path = tmp_path / "devlink.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    pq.ok("import", "--change", 'CMD ["true"]', str(tar_path), "hostile-devlink:latest")
    host_root = tmp_path / "hostroot"
    dev = _fake_dev(host_root / "dev")
    before = _identity(dev)
    r = pq("run", "--rm", "-v", f"{host_root}:/host", "hostile-devlink")
    assert r.returncode == 125
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "cannot create devices in /dev: it is not on the container's root" in lines[0]
    assert _identity(dev) == before
    pq.ok("rmi", "hostile-devlink:latest")


def test_volume_copy_never_reads_an_image_device_node(pq: Any, tmp_path: Path) -> None:
    """An image VOLUME holding a block device node: the engine copies the
    image's content into the new volume as host root, outside any device
    cgroup. It read the device (here a loop device standing for the host's
    disk) into the volume, where the container could read it."""
    backing = tmp_path / "disk.img"
    backing.write_bytes(b"HOST-DISK-SECRET" + bytes(65536 - 16))
    loop = subprocess.run(
        ["losetup", "-f", "--show", str(backing)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        rdev = os.stat(loop).st_rdev
        rootfs = make_busybox_rootfs(tmp_path / "rootfs")
        (rootfs / "data").mkdir()
        os.mknod(rootfs / "data/disk", stat.S_IFBLK | 0o600, rdev)
        tar_path = tmp_path / "voldev.tar"
        with tarfile.open(tar_path, "w") as tar:
            for entry in sorted(rootfs.iterdir()):
                tar.add(entry, arcname=entry.name)
        pq.ok("import", "--change", "VOLUME /data", str(tar_path), "hostile-voldev:latest")
        vol = f"voldev-{os.getpid()}"
        out = pq.ok(
            "run", "--rm", "-v", f"{vol}:/data", "hostile-voldev",
            "sh", "-c", "stat -c %F /data/disk; head -c 16 /data/disk 2>&1; true",
        )  # fmt: skip
        assert "HOST-DISK-SECRET" not in out
        assert out.splitlines()[0] == "block special file"
        data = Path(pq.ok("volume", "inspect", "-f", "{{.Mountpoint}}", vol).strip())
        st = os.lstat(data / "disk")
        assert stat.S_ISBLK(st.st_mode)
        assert st.st_rdev == rdev
        pq.ok("volume", "rm", vol)
        pq.ok("rmi", "hostile-voldev:latest")
    finally:
        subprocess.run(["losetup", "-d", loop], check=True)


def test_cp_out_twice_never_writes_through_a_copied_symlink(pq: Any, tmp_path: Path) -> None:
    """A running container leaves `x -> <host dev>` for a first `cp`, then
    makes x a directory with a file `null`: the second `cp` into the same
    destination wrote into the host's null node and chmod'ed it 0644."""
    dev = _fake_dev(tmp_path / "dev")
    before = _identity(dev)
    out = tmp_path / "out"
    out.mkdir()
    name = f"cpx-{os.getpid()}"
    pq.ok(
        "run", "-d", "--name", name, "busybox", "sh", "-c", f"mkdir /d; ln -s {dev} /d/x; sleep 600"
    )
    try:
        deadline = time.monotonic() + 30
        while pq("exec", name, "test", "-L", "/d/x").returncode != 0:
            assert time.monotonic() < deadline, "the container never made /d/x"
            time.sleep(0.05)
        pq.ok("cp", f"{name}:/d", f"{out}/")
        assert (out / "d/x").is_symlink()
        pq.ok(
            "exec",
            name,
            "sh",
            "-c",
            "rm /d/x; mkdir /d/x; echo pwned > /d/x/null; chmod 644 /d/x/null",
        )
        pq.ok("cp", f"{name}:/d", f"{out}/")
    finally:
        pq("rm", "-f", name)
    assert _identity(dev) == before
    assert (out / "d/x/null").read_text() == "pwned\n"
