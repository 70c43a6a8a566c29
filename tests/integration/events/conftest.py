"""An engine root with a busybox image (from Debian's busybox-static), a CLI
runner, and a reader of a streaming `portique events` (issue 13, items 2 and 3)."""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.events_cli import Stream
from support.rootfs import make_busybox_rootfs


@pytest.fixture(scope="session")
def pq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    base = tmp_path_factory.mktemp("events")
    run_root = Path(f"/run/pq-events-test-{os.getpid()}")
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


@pytest.fixture
def stream(pq: Portique) -> Iterator[Callable[..., Stream]]:
    made: list[Stream] = []

    def start(*args: str) -> Stream:
        s = Stream(pq, *args)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()
