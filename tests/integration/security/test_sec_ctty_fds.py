"""No terminal and no engine fd of the host reaches a container (attacks that held).

Run from a terminal (a pty the test makes, as `script` would), a container's
process must have no controlling terminal (/dev/tty is ENXIO: no TIOCSTI
into the user's shell, no reading what they type), whether started by `run`,
`exec` or a build's RUN step; and it must hold no fd but its stdio: not the
engine's database, its journal, log files, lock files, the monitor's socket,
netlink sockets (a user-defined network, so the DNS server and pyroute2 ran).
"""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import PORTIQUE, Portique
from support.sec_engine import engine, image_tar

PROBE = (
    # The shell's error opening /dev/tty goes to /dev/null too: on stderr, it could
    # land in the middle of stdout's lines.
    "if { echo x > /dev/tty; } 2>/dev/null; then echo HAS-TTY; else echo no-tty; fi; "
    "for f in /proc/self/fd/*; do echo fd $(basename $f) $(readlink $f); done"
)


@pytest.fixture(scope="module")
def pq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    base = tmp_path_factory.mktemp("ctty")
    with engine(base, f"pq-sec-tty-{os.getpid()}") as p:
        p.ok("import", str(image_tar(base / "img")), "bb:latest")
        p.ok("network", "create", "ttynet")
        yield p


def _take_terminal() -> None:
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def on_a_terminal(pq: Portique, *args: str) -> str:
    """`portique args` with a fresh pty as its controlling terminal and stdio."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [PORTIQUE, *args],
            env=pq.env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last holder of the slave closed it
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=120) == 0, out.decode(errors="replace")
    finally:
        os.close(master)
    return out.decode(errors="replace").replace("\r\n", "\n")


def _check(out: str, what: str) -> None:
    lines = [line.strip() for line in out.splitlines()]
    assert "no-tty" in lines, f"{what} did not run the probe: {out}"
    assert "HAS-TTY" not in lines, f"{what} got the host terminal: {out}"
    fds = [line.split()[1:] for line in out.splitlines() if line.startswith("fd ")]
    extra = [f for f in fds if f[0] not in ("0", "1", "2") and len(f) > 1]
    # The shell's own fd for /proc/self/fd/* listing may show as a directory of proc.
    extra = [f for f in extra if not f[1].startswith("/proc/")]
    assert extra == [], f"{what} holds fds of the host: {extra}"
    for fd in fds:
        if len(fd) > 1:
            assert "portique" not in fd[1], f"{what}: {fd}"
            assert "/dev/pts" not in fd[1], f"{what}: {fd}"


def test_run_and_exec_from_a_terminal(pq: Portique) -> None:
    _check(on_a_terminal(pq, "run", "--rm", "--network", "ttynet", "bb", "sh", "-c", PROBE), "run")
    cid = pq.ok("run", "-d", "--network", "ttynet", "bb", "sleep", "600").strip()
    _check(on_a_terminal(pq, "exec", cid, "sh", "-c", PROBE), "exec")
    _check(on_a_terminal(pq, "exec", "-i", cid, "sh", "-c", PROBE), "exec -i")
    pq.ok("rm", "-f", cid)


def test_build_step_from_a_terminal(pq: Portique, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM bb\nRUN {PROBE}\n")
    _check(on_a_terminal(pq, "build", "--no-cache", str(ctx)), "a RUN step")
