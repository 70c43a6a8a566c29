"""The container's stdio as the monitor holds it: pipes, or a pty master for -t.

Pipes: the container gets the read end of stdin (or /dev/null without -i) and
the write ends of stdout/stderr; the monitor keeps the other ends. A tty: the
runtime makes the pty inside the container's devpts and sends the master over
a console socket (runc's protocol), which we accept after create.
"""

from __future__ import annotations

import contextlib
import os
import socket
from contextlib import ExitStack
from typing import Any

from portique.engine.paths import ContainerPaths
from portique.errors import PortiqueError


class Stdio:
    def __init__(self, paths: ContainerPaths, tty: bool, stdin: bool, stack: ExitStack) -> None:
        self.tty = tty
        self._stack = stack
        self._child: list[int] = []
        self._mine: dict[str, int] = {}
        self._console: socket.socket | None = None
        self._console_path = ""
        if tty:
            # A private short directory: sun_path holds only 108 bytes, too
            # few for <runroot>/containers/<64 hex>/console.sock.
            import shutil
            import tempfile

            tmp = tempfile.mkdtemp(prefix="pq-console-")
            stack.callback(shutil.rmtree, tmp, True)
            self._console_path = os.path.join(tmp, "c.sock")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            stack.callback(s.close)
            s.bind(self._console_path)
            stack.callback(_unlink, self._console_path)
            s.listen(1)
            self._console = s
            return
        if stdin:
            r, w = os.pipe2(os.O_CLOEXEC)
            self._child.append(r)
            self._mine["in"] = w
        else:
            self._child.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        for name in ("out", "err"):
            r, w = os.pipe2(os.O_CLOEXEC)
            self._mine[name] = r
            self._child.append(w)
        for fd in (*self._child, *self._mine.values()):
            stack.callback(_close, fd)

    def runtime_kwargs(self) -> dict[str, Any]:
        if self.tty:
            return {"console_socket": self._console_path}
        return {"stdio": tuple(self._child)}

    def after_create(self) -> None:
        """Close the container's ends; receive the pty master for -t."""
        for fd in self._child:
            _close(fd)
        self._child = []
        if self._console is None:
            return
        self._console.settimeout(10)
        try:
            conn, _ = self._console.accept()
        except OSError as exc:
            raise PortiqueError(f"no terminal from the runtime: {exc}") from None
        with conn:
            conn.settimeout(10)
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
        if not fds:
            raise PortiqueError("the runtime sent no terminal on the console socket")
        for extra in fds[1:]:
            _close(extra)
        os.set_inheritable(fds[0], False)
        self._mine["pty"] = fds[0]
        self._stack.callback(_close, fds[0])
        self._console.close()
        _unlink(self._console_path)

    def monitor_fds(self) -> dict[str, int]:
        return dict(self._mine)


def make(paths: ContainerPaths, *, tty: bool, stdin: bool, stack: ExitStack) -> Stdio:
    return Stdio(paths, tty, stdin, stack)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
