"""Helpers of the attack tests in tests/integration/security/test_sec_*.py: an engine
root of their own (with a busybox image that may carry extra files), and small
static C programs the attacking images ship."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from support.engine_cli import Portique
from support.rootfs import make_busybox_rootfs


def build_static(source: str, dest: Path) -> Path:
    """Compile C `source` into the static binary `dest` (the test images have no libc)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = dest.with_suffix(".c")
    src.write_text(source)
    subprocess.run(
        ["gcc", "-static", "-Os", "-Wall", "-Werror", "-o", str(dest), str(src)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dest


def image_tar(dest: Path, extra: Mapping[str, Path] | None = None) -> Path:
    """A busybox root filesystem as a tar, with `extra` files (path in the image ->
    host file) added: what `portique import` makes an image of."""
    rootfs = make_busybox_rootfs(dest / "rootfs")
    for inside, host in (extra or {}).items():
        target = rootfs / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(host, target)
    tar_path = dest / "image.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    return tar_path


@contextmanager
def engine(base: Path, run_name: str) -> Iterator[Portique]:
    """A `portique` with its own root under `base` and run root /run/<run_name>
    (short: unix socket paths stay under 108 bytes); everything it made is removed
    at the end: containers, networks (bridges, nftables tables), the run root."""
    run_root = Path("/run") / run_name
    env = dict(os.environ, PORTIQUE_ROOT=str(base / "root"), PORTIQUE_RUNROOT=str(run_root))
    pq = Portique(env, base / "root", run_root)
    try:
        yield pq
    finally:
        ids = pq("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            pq("rm", "-f", "-v", *ids, timeout=120)
        from portique.network.networks import Networks

        if pq.root.exists():
            nets = Networks(pq.root, run_root=run_root)
            try:
                nets.destroy()
            finally:
                nets.close()
        subprocess.run(["rm", "-rf", str(run_root)], check=False)


__all__ = ["build_static", "engine", "image_tar"]
