"""A container's files must be out of reach of the host's other users (CVE-2021-41091).

A container runs as root: whatever it makes in its volumes (a setuid-root
program, a world-writable device node of the host's disk) lands in a host
directory under the engine root. If any host user can walk there, every local
account becomes root through any container. The database holds every
container's environment (passwords given with -e), the blobs every private
image. Docker closes its data directory to root alone; so must we, and a root
made by an older portique (0755) must be closed by the next command.
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.sec_engine import build_static, engine, image_tar

EUID_PROBE = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("euid=%d\n", (int)geteuid()); return 0; }
"""


@pytest.fixture
def open_base() -> Iterator[Path]:
    # pytest's own tmp_path sits under a 0700 directory, which would hide the
    # attack: the engine root must be where any user may walk, as /var/lib is.
    base = Path(tempfile.mkdtemp(prefix="pq-sec-perm-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    """`argv` run as the host user nobody (not setpriv: it keeps its capabilities
    until the execve, so the path lookup would still be root's)."""
    try:
        return subprocess.run(
            argv, user=65534, group=65534, extra_groups=[], capture_output=True, text=True,
            timeout=30,
        )  # fmt: skip
    except PermissionError as exc:
        return subprocess.CompletedProcess(argv, 126, "", str(exc))


def test_host_users_cannot_reach_what_a_container_made(open_base: Path, tmp_path: Path) -> None:
    probe = build_static(EUID_PROBE, tmp_path / "probe" / "euid")
    # A root as an older portique left it: world-readable and traversable.
    (open_base / "root").mkdir(mode=0o755)
    os.chmod(open_base / "root", 0o755)
    secret = f"s3cret-{secrets.token_hex(8)}"
    with engine(open_base, f"pq-sec-perm-{os.getpid()}") as pq:
        pq.ok("import", str(image_tar(tmp_path / "img", {"/probe/euid": probe})), "suid:latest")
        pq.ok(
            "run", "-d", "--name", "planter", "-e", f"TOKEN={secret}", "-v", "planted:/data",
            "suid", "sh", "-c",
            "cp /probe/euid /data/euid && chmod 4755 /data/euid && "
            "cp /probe/euid /euid && chmod 4755 /euid && touch /data/ready && exec sleep 600",
        )  # fmt: skip
        volume = pq.root / "volumes" / "planted" / "_data"
        _wait_for(volume / "ready")
        assert os.stat(volume / "euid").st_mode & stat.S_ISUID, "the container made it setuid"
        cid = pq.inspect("planter", "{{.Id}}")
        upper = pq.root / "containers" / cid / "upper" / "euid"
        for planted in (volume / "euid", upper):
            ran = as_nobody(str(planted))
            assert "euid=0" not in ran.stdout, f"a host user became root through {planted}"
            assert ran.returncode != 0, f"a host user ran {planted}: {ran.stdout}"
        leaked = as_nobody("grep", "-c", secret, str(pq.root / "portique.db"))
        # grep exits 2 when it cannot open the file, 1 when it finds nothing.
        assert leaked.returncode == 2, "a host user read the database (the containers' env)"
        blobs = as_nobody("ls", str(pq.root / "blobs" / "sha256"))
        assert blobs.returncode != 0, "a host user listed the image blobs"
        mode = stat.S_IMODE(os.stat(pq.root).st_mode)
        assert mode & 0o077 == 0, f"engine root left mode {mode:o}"


def test_a_tightened_root_still_runs_containers_as_other_users(
    open_base: Path, tmp_path: Path
) -> None:
    """The closed root must not break what runs as a non-root user inside."""
    with engine(open_base, f"pq-sec-perm2-{os.getpid()}") as pq:
        pq.ok("import", str(image_tar(tmp_path / "img")), "bb:latest")
        out = pq.ok(
            "run", "--rm", "-u", "65534:65534", "-v", "v2:/data", "-w", "/tmp", "bb",
            "sh", "-c", "id -u; ls -d /data; cat /etc/hostname >/dev/null && echo ok",
        )  # fmt: skip
        assert out.split() == ["65534", "/data", "ok"]


def _wait_for(path: Path, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
