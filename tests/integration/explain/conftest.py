"""Fixtures for `explain`: an isolated engine root with a busybox image, a way to
start containers that are removed after the test, and the JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PORTIQUE = str(Path(sys.executable).parent / "portique")


@dataclass
class Engine:
    env: dict[str, str]
    root: Path
    run_root: Path

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PORTIQUE, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str, timeout: float = 120) -> str:
        p = self(*args, timeout=timeout)
        assert p.returncode == 0, f"portique {' '.join(args)} -> {p.returncode}: {p.stderr}"
        return p.stdout


@dataclass
class Container:
    id: str
    pid: int
    report: dict[str, Any]


def _on_overlay(path: Path) -> bool:
    best, kind = "", ""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        mnt = pre.split()[4]
        if (str(path) + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best):
            best, kind = mnt, post.split()[0]
    return kind == "overlay"


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    from support.rootfs import make_busybox_rootfs

    base = tmp_path_factory.mktemp("explain")
    if _on_overlay(base):  # the cgroup v2 VM: an overlay upper dir cannot live on overlay
        base = Path(f"/var/lib/portique/pq-explain-test-{os.getpid()}")
        base.mkdir(parents=True, exist_ok=True)
    run_root = Path(f"/run/pq-explain-{os.getpid()}")
    env = dict(os.environ, PORTIQUE_ROOT=str(base / "root"), PORTIQUE_RUNROOT=str(run_root))
    eng = Engine(env, base / "root", run_root)
    rootfs = make_busybox_rootfs(base / "rootfs")
    tar_path = base / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    eng.ok("import", "--change", 'CMD ["/bin/sh"]', str(tar_path), "busybox:latest")
    yield eng
    ids = eng.ok("ps", "-aq", "--no-trunc").split()
    if ids:
        eng("rm", "-f", *ids)
    from portique.network.networks import Networks

    nets = Networks(base / "root", run_root=run_root)
    try:
        nets.destroy()
    finally:
        nets.close()
    subprocess.run(["rm", "-rf", str(run_root)], check=False)


@pytest.fixture
def explained(engine: Engine) -> Iterator[Callable[..., Container]]:
    """explained(*run_flags) -> a running busybox `sleep` and its explain report."""
    started: list[str] = []

    def start(*flags: str) -> Container:
        cid = engine.ok("run", "-d", *flags, "busybox", "sleep", "600").strip()
        started.append(cid)
        pid = int(engine.ok("inspect", "-f", "{{.State.Pid}}", cid))
        assert cid in Path(f"/proc/{pid}/cgroup").read_text()  # it is that container's
        report = json.loads(engine.ok("explain", "--format", "json", cid))
        return Container(cid, pid, report)

    yield start
    if started:
        engine("rm", "-f", *started)
