"""`cp`, `export` and `--network container:X` reach a running container through its
init's pid: that pid must still be the container's init.

The database says which pid is the init. Between the init's death and the
monitor's record of it, or after a pid reuse, that number can belong to a
host process: /proc/<pid>/root is then the host's root (a `cp` into the
container writes the host's files, a `cp` out reads them) and
/proc/<pid>/ns/net the host's network namespace (a container joining it gets
the host's network). The test puts a host process's pid in the row, as such
a moment would, and requires the commands to refuse: the runtime's record
(pid and start time) decides, not the row.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.sec_engine import engine, image_tar


@pytest.fixture
def pq(tmp_path: Path) -> Iterator[Portique]:
    with engine(tmp_path, f"pq-sec-pid-{os.getpid()}") as p:
        p.ok("import", str(image_tar(tmp_path / "img")), "bb:latest")
        yield p


@pytest.fixture
def host_process() -> Iterator[int]:
    proc = subprocess.Popen(["sleep", "600"], cwd="/")
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_row_whose_pid_is_a_host_process(pq: Portique, tmp_path: Path, host_process: int) -> None:
    cid = pq.ok("run", "-d", "--name", "c1", "bb", "sleep", "600").strip()
    with sqlite3.connect(pq.root / "portique.db") as conn:
        conn.execute("UPDATE containers SET pid = ? WHERE id = ?", (host_process, cid))
    out = tmp_path / "copied"
    p = pq("cp", "c1:/etc/hostname", str(out))
    host_name = Path("/etc/hostname").read_text()
    assert not (out.exists() and out.read_text() == host_name), "cp read the host's /etc/hostname"
    assert p.returncode != 0
    assert "not running" in p.stderr
    marker = f"pq-sec-stale-{os.getpid()}"
    src = tmp_path / marker
    src.write_text("written\n")
    p = pq("cp", str(src), "c1:/tmp/")
    assert not Path("/tmp", marker).exists(), "cp wrote into the host's /tmp"
    assert p.returncode != 0
    p = pq("run", "--rm", "--network", "container:c1", "bb", "ls", "/sys/class/net")
    assert p.returncode != 0, f"a container joined the host's network: {p.stdout}"
    assert "not running" in p.stderr
