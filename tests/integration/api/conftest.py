"""`portique serve` under test: each test gets its own engine root (busybox
imported from Debian's busybox-static) and its own server on a temp socket
(support/api_server.py), stopped by pid after; its containers are removed."""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.api_server import DOCKER, Server, start_server
from support.engine_cli import Portique


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from support.rootfs import make_busybox_rootfs

    dest = tmp_path_factory.mktemp("apibusybox")
    rootfs = make_busybox_rootfs(dest / "rootfs")
    tar_path = dest / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    return tar_path


@pytest.fixture
def engine_root(tmp_path: Path, busybox_tar: Path) -> Iterator[Portique]:
    run_root = Path(f"/run/pq-api-{os.getpid()}-{tmp_path.name[-12:]}")
    env = dict(os.environ, PORTIQUE_ROOT=str(tmp_path / "root"), PORTIQUE_RUNROOT=str(run_root))
    pq = Portique(env, tmp_path / "root", run_root)
    pq.ok("import", "--change", 'CMD ["/bin/sh"]', str(busybox_tar), "busybox:latest")
    yield pq
    ids = pq("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        pq("rm", "-f", *ids, timeout=120)
    from portique.network.networks import Networks

    nets = Networks(tmp_path / "root", run_root=run_root)
    try:
        nets.destroy()
    finally:
        nets.close()
    shutil.rmtree(run_root, ignore_errors=True)


@pytest.fixture
def server(engine_root: Portique, tmp_path: Path) -> Iterator[Server]:
    if not DOCKER:
        pytest.fail("no docker CLI: scripts/setup.sh installs one")
    srv = start_server(engine_root, tmp_path / "d.sock")
    yield srv
    assert srv.stop() == 0, srv.log.read_text()
    assert not srv.sock.exists()
