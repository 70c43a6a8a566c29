"""`portique run` never replaces a host device node (issue 9, item 8).

`run -v /dev:/dev` unlinked and re-made every default device of the host's
/dev; an image whose /dev is a symlink to host/dev did the same when run
with the host's root bound at /host. A directory of the test plays the
host's /dev here, with a real null node in it.
"""

from __future__ import annotations

import os
import stat
import tarfile
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
