"""The images the drop-in suites (tests/compat: dockerd, podman, containerd's
CRI) load into their callers, and the runtime they register.

Debian's busybox-static is imported with `portique import` and written out
with `portique save` as docker-archive tarballs, which `docker load`,
`podman load` and `ctr images import` all read:

- `docker.io/library/busybox:latest`, CMD /bin/sh;
- `localhost/portique-pause:1`, the pod sandbox image of the CRI tests:
  busybox's sleep as a pause container (CMD /bin/sleep 2147483647).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from support.rootfs import make_busybox_rootfs

BUSYBOX = "docker.io/library/busybox:latest"
PAUSE = "localhost/portique-pause:1"
# The runtime under test: the launcher scripts/setup.sh writes next to the
# venv's python (portique.cli.runc.launcher), as callers would run it.
RUNTIME = str(Path(sys.executable).with_name("portique-runtime"))


@dataclass(frozen=True)
class CompatImages:
    busybox: Path  # docker-archive of BUSYBOX
    pause: Path  # docker-archive of PAUSE


def make_compat_images(base: Path) -> CompatImages:
    env = dict(
        os.environ, PORTIQUE_ROOT=str(base / "pq-root"), PORTIQUE_RUNROOT=str(base / "pq-run")
    )
    rootfs = make_busybox_rootfs(base / "busybox")
    tar = base / "rootfs.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(rootfs, arcname=".")
    pq = [sys.executable, "-m", "portique"]
    out = {}
    for name, cmd in ((BUSYBOX, '["/bin/sh"]'), (PAUSE, '["/bin/sleep", "2147483647"]')):
        subprocess.run(
            [*pq, "import", "--change", f"CMD {cmd}", str(tar), name],
            env=env,
            check=True,
            capture_output=True,
        )
        archive = base / (name.rsplit("/", 1)[1].replace(":", "-") + ".tar")
        subprocess.run(
            [*pq, "save", "-o", str(archive), name], env=env, check=True, capture_output=True
        )
        out[name] = archive
    return CompatImages(busybox=out[BUSYBOX], pause=out[PAUSE])
