"""An engine root with a busybox image, and a `portique` runner bound to it."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator

import pytest

from support.rootfs import make_busybox_rootfs

Portique = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    base = tmp_path_factory.mktemp("engine")
    env = dict(os.environ)
    env["PORTIQUE_ROOT"] = str(base / "root")
    env["PORTIQUE_RUNROOT"] = str(base / "run")
    rootfs = make_busybox_rootfs(base / "busybox")
    tar = base / "busybox.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(rootfs, arcname=".")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "portique",
            "import",
            "--change",
            'CMD ["/bin/sh"]',
            str(tar),
            "busybox:latest",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    yield env
    # RUN steps on the default bridge made this root a bridge and nftables tables
    # that outlive its directory: remove them (the subnet pool is finite).
    from portique.network.networks import Networks

    nets = Networks(base / "root", run_root=base / "run")
    try:
        nets.destroy()
    finally:
        nets.close()


@pytest.fixture
def portique(engine: dict[str, str]) -> Portique:
    def run(
        *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "portique", *args],
            env=engine,
            capture_output=True,
            text=True,
            input=input,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"portique {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run
