"""`run -it` and `exec -it` through a real pseudo-terminal (python's pty module)."""

from __future__ import annotations

import itertools
import os
import pty
import select
import sys
import time
from pathlib import Path

from support.engine_cli import Portique

PORTIQUE = str(Path(sys.executable).parent / "portique")


class Term:
    """A portique process on the slave side of a fresh pty; we hold the master."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - child
            os.execve(PORTIQUE, [PORTIQUE, *args], env)
        self.pid, self.fd = pid, fd
        self.buf = b""
        self.resize(30, 100)

    def resize(self, rows: int, cols: int) -> None:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, needle: bytes, timeout: float = 20.0) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen; got {self.buf[-500:]!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"EOF before {needle!r}; got {self.buf[-500:]!r}")
                self.buf += chunk
        return self.buf

    def run_until(self, command: bytes, needle: bytes, timeout: float = 60.0) -> None:
        """Run `command` in the shell again and again until its output has `needle`."""
        deadline = time.monotonic() + timeout
        for attempt in itertools.count(1000):
            start = len(self.buf)
            # The shell prints end-<n+1>; the terminal echoes only end-$((n+1)).
            self.send(command + b"; echo end-$((%d+1))\r" % attempt)
            self.expect(b"end-%d" % (attempt + 1))
            if needle in self.buf[start:]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not seen; got {self.buf[-500:]!r}")
            time.sleep(0.05)

    def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
                if ready:
                    self.buf += os.read(self.fd, 4096)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        raise AssertionError("portique did not exit")


def _commands(pq: Portique, container: str) -> list[str]:
    rows = pq.ok("top", container, "-eo", "pid,args").splitlines()[1:]
    return [row.split(None, 1)[1] for row in rows]


def _wait_for_process(pq: Portique, container: str, args: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while args not in _commands(pq, container):
        assert time.monotonic() < deadline, f"no {args!r} in {container}"
        time.sleep(0.05)


def test_run_it_shell_resize_ctrl_c_and_exit(pq: Portique) -> None:
    t = Term(pq.env, "run", "-it", "--rm", "--name", "tty1", "busybox", "sh")
    t.expect(b"# ")
    t.send(b"tty; echo $((6*7))\r")
    t.expect(b"42")
    assert b"/dev/pts/0" in t.buf
    t.send(b"stty size\r")
    t.expect(b"30 100")  # our terminal's size reached the container
    t.resize(40, 120)  # SIGWINCH -> RESIZE -> TIOCSWINSZ on the container's pty
    t.run_until(b"stty size", b"40 120")
    # Ctrl-C goes to the container's foreground job, not to portique.
    t.send(b"sleep 30\r")
    _wait_for_process(pq, "tty1", "sleep 30")
    t.send(b"\x03")
    t.send(b"echo after-$((1+1))\r")
    t.expect(b"after-2")
    t.send(b"exit 3\r")
    assert t.wait() == 3


def test_run_it_detach_with_ctrl_p_ctrl_q(pq: Portique) -> None:
    t = Term(pq.env, "run", "-it", "--name", "tty2", "busybox", "sh")
    t.expect(b"# ")
    t.send(b"echo marker-$((2+3))\r")
    t.expect(b"marker-5")
    t.send(b"\x10\x11")
    assert t.wait() == 0
    assert pq.inspect("tty2", "{{.State.Status}}") == "running"
    # attach again, then leave by exiting the shell
    t2 = Term(pq.env, "attach", "tty2")
    t2.send(b"echo back-$((4+4))\r")
    t2.expect(b"back-8")
    t2.send(b"exit 0\r")
    assert t2.wait() == 0
    assert pq.ok("wait", "tty2").strip() == "0"
    assert "marker-5" in pq.ok("logs", "tty2")
    pq.ok("rm", "tty2")


def test_exec_it(pq: Portique) -> None:
    cid = pq.ok("run", "-d", "busybox", "sleep", "300").strip()
    t = Term(pq.env, "exec", "-it", cid, "sh")
    t.expect(b"# ")
    t.send(b"tty; ps -o pid,args | grep -c 'sleep 300'\r")
    t.expect(b"/dev/pts/")
    t.send(b"exit 6\r")
    assert t.wait() == 6
    pq.ok("rm", "-f", cid)
