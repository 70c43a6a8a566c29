"""Fixtures for the engine's integration tests: an isolated engine root with a
busybox image imported from Debian's busybox-static, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique


def _busybox_tar(dest: Path) -> Path:
    from support.rootfs import make_busybox_rootfs

    rootfs = make_busybox_rootfs(dest / "rootfs")
    tar_path = dest / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    return tar_path


def _fstype(path: Path) -> str:
    best, kind = "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            mnt = pre.split()[4]
            if (str(path) + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best):
                best, kind = mnt, post.split()[0]
    return kind


@pytest.fixture(scope="session")
def pq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    base = tmp_path_factory.mktemp("engine")
    if _fstype(base) == "overlay":
        # Inside the cgroup v2 VM / is an overlay, and an overlay's upper dir
        # cannot live on one: use the VM's tmpfs engine root instead.
        base = Path(f"/var/lib/portique/pq-eng-test-{os.getpid()}")
        base.mkdir(parents=True, exist_ok=True)
    # Short run root: unix socket paths must stay under 108 bytes for the runtime.
    run_root = Path(f"/run/pq-eng-test-{os.getpid()}")
    env = dict(os.environ, PORTIQUE_ROOT=str(base / "root"), PORTIQUE_RUNROOT=str(run_root))
    p = Portique(env, base / "root", run_root)
    tar = _busybox_tar(base)
    p.ok("import", "--change", 'CMD ["/bin/sh"]', str(tar), "busybox:latest")
    yield p
    ids = p.ok("ps", "-aq", "--no-trunc").split()
    if ids:
        p("rm", "-f", *ids, timeout=120)
    # The root's bridges (pq0-<hash>) and nftables tables (portique_<hash>) outlive
    # its directory: remove them, or every run takes one more subnet from the pool.
    from portique.network.networks import Networks

    nets = Networks(base / "root", run_root=run_root)
    try:
        nets.destroy()
    finally:
        nets.close()
    subprocess.run(["rm", "-rf", str(run_root)], check=False)


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]
