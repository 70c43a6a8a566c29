"""Files the engine reads from a container's root must never block it.

The engine reads the image's /etc/passwd and /etc/group on the host at every
start (the user to run as, its groups), at `exec -u` and at build's
`--chown`. The image (or the running container, later) decides what those
names are: a FIFO made the open block forever: `run` never returned and its
monitor stayed stuck, `exec -u` hung, and a build on such a base never ended.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.sec_engine import engine, image_tar


@pytest.fixture(scope="module")
def pq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    base = tmp_path_factory.mktemp("fifo")
    tar = image_tar(base / "img")
    # The same root with /etc/passwd and /etc/group as FIFOs (a tar can hold them).
    rootfs = base / "img" / "rootfs"
    for name in ("passwd", "group"):
        (rootfs / "etc" / name).unlink()
        os.mkfifo(rootfs / "etc" / name)
    fifo_tar = base / "fifo.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(fifo_tar), "."], check=True)
    with engine(base, f"pq-sec-fifo-{os.getpid()}") as p:
        p.ok("import", str(tar), "bb:latest")
        p.ok("import", str(fifo_tar), "fifopw:latest")
        yield p


def _run(pq: Portique, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return pq(*args, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`portique {' '.join(args)}` blocked on a FIFO of the image")


def test_run_of_an_image_whose_passwd_is_a_fifo(pq: Portique) -> None:
    p = _run(pq, "run", "--rm", "fifopw", "echo", "ran")
    assert (p.returncode, p.stdout) == (0, "ran\n"), p.stderr
    p = _run(pq, "run", "--rm", "-u", "daemon", "fifopw", "true")
    assert p.returncode == 125
    assert "unable to find user daemon" in p.stderr


def test_exec_user_when_the_container_made_its_passwd_a_fifo(pq: Portique) -> None:
    cid = pq.ok(
        "run", "-d", "bb", "sh", "-c",
        "rm /etc/passwd && mkfifo /etc/passwd && touch /ready && exec sleep 600",
    ).strip()  # fmt: skip
    deadline = time.monotonic() + 60
    while pq("exec", cid, "test", "-e", "/ready").returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    p = _run(pq, "exec", "-u", "daemon", cid, "true")
    assert p.returncode != 0
    assert "unable to find user daemon" in p.stderr
    # A restart reads it again, in the monitor.
    pq.ok("stop", "-t", "0", cid)
    p = _run(pq, "start", cid)
    assert p.returncode == 0, p.stderr
    pq.ok("rm", "-f", cid)


def test_build_chown_on_a_base_whose_passwd_is_a_fifo(pq: Portique, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("x\n")
    (ctx / "Dockerfile").write_text("FROM fifopw\nCOPY --chown=daemon f /f\n")
    p = _run(pq, "build", "-q", str(ctx))
    assert p.returncode != 0
    assert "unable to find user daemon" in p.stderr
