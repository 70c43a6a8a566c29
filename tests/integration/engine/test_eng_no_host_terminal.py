"""A container never gets the caller's terminal, nor any other fd of the caller.

The attack (issue 9, item 3): `portique exec` without -t handed the caller's
fds 1 and 2 to the container; from a terminal that is the host's pty, open
read-write, and a process the exec left behind kept it and read what was
typed on the host afterwards. Build steps got the host terminal too. Here
portique runs on the slave side of a real pty (python's pty module) and the
container tries exactly that.
"""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time
from pathlib import Path
from typing import Any

import pytest

PORTIQUE = str(Path(sys.executable).parent / "portique")

# What each fd of the process is, as the kernel names it.
# ($$: the shell itself, not the command substitution's subshell.)
FDS = 'for n in 0 1 2; do echo "fd$n=$(readlink /proc/$$/fd/$n)"; done'


class Terminal:
    """portique on the slave side of a fresh pty; we keep the master open
    after portique exits, so a process that kept the slave could still use it."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - child
            os.execve(PORTIQUE, [PORTIQUE, *args], env)
        self.pid, self.fd = pid, fd
        self.buf = b""
        self.code: int | None = None

    def _pull(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                self.buf += os.read(self.fd, 4096)
            except OSError:  # EIO: no process holds the slave any more
                time.sleep(timeout)

    def expect(self, needle: bytes, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not seen; got {self.buf[-800:]!r}")
            self._pull(0.1)

    def wait(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.code is None:
            if time.monotonic() > deadline:
                os.kill(self.pid, 9)
                raise AssertionError(f"portique did not exit; got {self.buf[-800:]!r}")
            self._pull(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        os.close(self.fd)


def _fds(text: str) -> dict[str, str]:
    return dict(re.findall(r"(fd\d)=(\S*)", text))


def _wait_for_file(pq: Any, cid: str, path: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = pq("exec", cid, "cat", path)
        if proc.returncode == 0:
            return str(proc.stdout)
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared in {cid[:12]}")


# Left running by the exec: once told to go (after the exec returned and the
# host typed a line), it writes to its inherited stdout and reads its stdin
# and its stdout (a pty is open read-write). EPIPE instead of SIGPIPE, so it
# lives to report.
LEFTOVER = (
    "trap '' PIPE; while [ ! -e /tmp/go ]; do sleep 0.05; done; "
    "echo LEAKED-OUTPUT; echo LEAKED-ERROR >&2; "
    "timeout 5 head -c 12 <&0 >/tmp/stolen0 2>/dev/null; "
    "timeout 5 head -c 12 <&1 >/tmp/stolen1 2>/dev/null; "
    "echo done >/tmp/bg-done"
)


@pytest.mark.parametrize("flags", [[], ["-i"]], ids=["exec", "exec-i"])
def test_exec_without_tty_gives_pipes_and_leftovers_lose_the_terminal(
    pq: Any, flags: list[str]
) -> None:
    cid = pq.ok("run", "-d", "--network", "none", "busybox", "sleep", "300").strip()
    # sh -c SCRIPT LEFTOVER: the leftover is $0, started in the background.
    script = f'{FDS}; sh -c "$0" & echo started'
    t = Terminal(pq.env, "exec", *flags, cid, "sh", "-c", script, LEFTOVER)
    try:
        assert t.wait() == 0
        during = t.buf.decode(errors="replace")
        # portique has returned; the host's user types a line.
        t.type(b"TYPED-SECRET\n")
        seen = len(t.buf)
        pq.ok("exec", cid, "touch", "/tmp/go")
        _wait_for_file(pq, cid, "/tmp/bg-done")
        stolen = pq.ok("exec", cid, "cat", "/tmp/stolen0", "/tmp/stolen1")
        t._pull(0.2)
        assert "TYPED" not in stolen, f"the leftover read the host's terminal: {stolen!r}"
        assert b"LEAKED" not in t.buf[seen:], t.buf[seen:]
        fds = _fds(during)
        assert fds["fd0"].startswith("pipe:" if flags else "/dev/null"), fds
        assert fds["fd1"].startswith("pipe:"), fds
        assert fds["fd2"].startswith("pipe:"), fds
        assert "/dev/pts" not in during
    finally:
        t.close()
        pq("rm", "-f", cid)


@pytest.mark.parametrize("flags", [[], ["-i"]], ids=["run", "run-i"])
def test_run_without_tty_gives_pipes(pq: Any, flags: list[str]) -> None:
    script = f"{FDS}; cat /dev/tty </dev/null >/dev/null 2>&1 || echo no-controlling-tty"
    t = Terminal(pq.env, "run", "--rm", *flags, "--network", "none", "busybox", "sh", "-c", script)
    try:
        assert t.wait() == 0
        text = t.buf.decode(errors="replace")
        fds = _fds(text)
        assert fds["fd0"].startswith("pipe:" if flags else "/dev/null"), fds
        assert fds["fd1"].startswith("pipe:"), fds
        assert fds["fd2"].startswith("pipe:"), fds
        assert "no-controlling-tty" in text
    finally:
        t.close()


def test_build_step_gets_pipes_not_the_terminal(pq: Any, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    # The step says READY, then reads what the host's user types, from its
    # stdout and from its stderr (a terminal is open read-write).
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        f"RUN {FDS}; echo READY; "
        "timeout 10 head -c 12 <&1 >/tmp/s1 2>/dev/null; "
        "timeout 10 head -c 12 <&2 >/tmp/s2 2>/dev/null; "
        'echo "STOLEN[$(cat /tmp/s1 /tmp/s2)]"\n'
    )
    t = Terminal(pq.env, "build", "--no-cache", str(ctx))
    try:
        t.expect(b"READY")
        t.type(b"TYPED-SECRET\nTYPED-SECRET\n")
        assert t.wait() == 0, t.buf[-800:]
        text = t.buf.decode(errors="replace")
        assert "STOLEN[]" in text, text[-800:]
        fds = _fds(text)
        assert fds["fd0"] == "/dev/null", fds
        assert fds["fd1"].startswith("pipe:"), fds
        assert fds["fd2"].startswith("pipe:"), fds
    finally:
        t.close()


def test_exec_tty_gets_a_pty_of_the_containers_own(pq: Any) -> None:
    cid = pq.ok("run", "-d", "--network", "none", "busybox", "sleep", "300").strip()
    # st_dev of each fd against the container's own devpts instance.
    script = (
        "pts=$(stat -c %d /dev/pts/ptmx); "
        'for n in 0 1 2; do [ "$(stat -L -c %d /proc/$$/fd/$n)" = "$pts" ] '
        '&& echo "fd$n=own" || echo "fd$n=foreign"; done'
    )
    t = Terminal(pq.env, "exec", "-it", cid, "sh", "-c", script)
    try:
        assert t.wait() == 0
        assert _fds(t.buf.decode(errors="replace")) == {"fd0": "own", "fd1": "own", "fd2": "own"}
    finally:
        t.close()
        pq("rm", "-f", cid)
