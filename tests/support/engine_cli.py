"""The engine tests' CLI runner (the `pq` fixture of integration/engine/conftest.py):
runs the installed `portique` with the test's own engine root."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PORTIQUE = str(Path(sys.executable).parent / "portique")


@dataclass
class Portique:
    env: dict[str, str]
    root: Path
    run_root: Path

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 60,
        check: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [PORTIQUE, *args],
            env=self.env,
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"portique {' '.join(args)} -> {proc.returncode}: {proc.stderr}")
        return proc

    @property
    def argv(self) -> list[str]:
        return [PORTIQUE]

    def ok(self, *args: str, timeout: float = 60, cwd: Path | None = None) -> str:
        return self(*args, timeout=timeout, check=True, cwd=cwd).stdout

    def inspect(self, ref: str, template: str) -> str:
        return self.ok("inspect", "-f", template, ref).strip()


@contextlib.contextmanager
def busybox_engine(base: Path, tag: str) -> Iterator[Portique]:
    """An engine root under `base` (its run root in /run, named by `tag` and
    our pid) holding busybox:latest imported from Debian's busybox-static;
    afterwards its containers, networks and run root are removed."""
    from support.rootfs import make_busybox_rootfs

    run_root = Path(f"/run/pq-{tag}-test-{os.getpid()}")
    env = dict(os.environ, PORTIQUE_ROOT=str(base / "root"), PORTIQUE_RUNROOT=str(run_root))
    p = Portique(env, base / "root", run_root)
    rootfs = make_busybox_rootfs(base / "rootfs")
    tar_path = base / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    p.ok("import", "--change", 'CMD ["/bin/sh"]', str(tar_path), "busybox:latest")
    try:
        yield p
    finally:
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
