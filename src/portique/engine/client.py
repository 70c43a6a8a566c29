"""Talking to a container's monitor over its unix socket (see stream.py)."""

from __future__ import annotations

import contextlib
import os
import socket

from portique.engine import stream as st
from portique.engine.paths import ContainerPaths


class MonitorGone(Exception):
    """No monitor answers for the container (not running, or it died)."""


def connect(paths: ContainerPaths, timeout: float | None = 10.0) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        dfd = os.open(paths.run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        s.close()
        raise MonitorGone(paths.id) from None
    try:
        s.settimeout(timeout)
        # Through the directory fd: the full path may exceed sun_path's limit.
        s.connect(f"/proc/self/fd/{dfd}/{st.SOCKET_NAME}")
    except OSError:
        s.close()
        raise MonitorGone(paths.id) from None
    finally:
        os.close(dfd)
    return s


class FrameReader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.frames: list[tuple[int, bytes]] = []

    def next(self) -> tuple[int, bytes] | None:
        """The next frame, or None at EOF."""
        while not self.frames:
            data = self.sock.recv(65536)
            if not data:
                return None
            frames, self.buf = st.split_frames(self.buf + data)
            self.frames.extend(frames)
        return self.frames.pop(0)


def request(
    paths: ContainerPaths, words: str, timeout: float | None = 10.0
) -> tuple[int, bytes] | None:
    """Send one request; return the first reply frame (None when the monitor closed)."""
    with connect(paths, timeout) as s:
        s.sendall(st.frame(st.HELLO, words.encode()))
        try:
            return FrameReader(s).next()
        except OSError:
            return None


def wait_exit(
    paths: ContainerPaths, words: str = "wait", timeout: float | None = None
) -> int | None:
    """Send `wait` (or a stop request) and block until EXIT; the exit code, or None."""
    with connect(paths, timeout) as s:
        s.settimeout(timeout)
        s.sendall(st.frame(st.HELLO, words.encode()))
        reader = FrameReader(s)
        for _ in range(1 << 20):
            try:
                f = reader.next()
            except OSError:
                return None
            if f is None:
                return None
            if f[0] == st.EXIT:
                with contextlib.suppress(ValueError):
                    return int(f[1])
                return None
    return None
