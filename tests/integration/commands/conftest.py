"""An engine root with a busybox image (from Debian's busybox-static) and a CLI
runner, for the tests of the verbs of issue 13 (commit, diff, update, cp,
build from stdin, repeated layers, ...)."""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.rootfs import make_busybox_rootfs


@pytest.fixture(scope="session")
def pq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    base = tmp_path_factory.mktemp("cmds")
    run_root = Path(f"/run/pq-cmds-test-{os.getpid()}")
    env = dict(os.environ, PORTIQUE_ROOT=str(base / "root"), PORTIQUE_RUNROOT=str(run_root))
    p = Portique(env, base / "root", run_root)
    rootfs = make_busybox_rootfs(base / "rootfs")
    tar_path = base / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    p.ok("import", "--change", 'CMD ["/bin/sh"]', str(tar_path), "busybox:latest")
    yield p
    ids = p.ok("ps", "-aq", "--no-trunc").split()
    if ids:
        p("rm", "-f", *ids, timeout=120)
    from portique.network.networks import Networks

    nets = Networks(base / "root", run_root=run_root)
    try:
        nets.destroy()
    finally:
        nets.close()
    subprocess.run(["rm", "-rf", str(run_root)], check=False)
