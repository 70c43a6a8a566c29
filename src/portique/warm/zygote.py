"""The monitors' zygote: a fork of the warm server, made before it served anything,
that forks the monitors.

A fork shares its parent's pages until either side writes one; a page the
parent writes after the fork becomes the child's alone. The server writes
to its heap at every command (sockets, workers, reference counts), so a
monitor forked from it late holds a private copy of every page the server
touched since it started. The zygote does nothing between forks but read
its channel, so its monitors share nearly all their pages with it and each
other. A monitor is the zygote's child (SIGCHLD ignored: the kernel reaps
it), one fork instead of two; when the zygote exits with the server (end of
its channel), the monitors are reparented as before: containers outlive both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from pathlib import Path
from typing import NoReturn

COMM = "pq-zygote"  # /proc/PID/comm: how `ps` and the tests tell it from a worker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from portique.warm.server import Server


def start(server: Server) -> socket.socket | None:
    """Fork the zygote; the server's end of its channel, or None (then the server forks)."""
    try:
        ours, theirs = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
        )
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        return None
    if pid == 0:  # pragma: no cover - the zygote
        code = 0
        try:
            _serve(server, theirs)
        except BaseException:
            code = 1
        os._exit(code)
    theirs.close()
    ours.settimeout(10.0)  # a zygote that hangs is dropped (the server forks)
    return ours


def _serve(server: Server, chan: socket.socket) -> NoReturn:
    from portique.warm import worker

    worker.forget_server(server, {chan.fileno()})
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as f:
        f.write(COMM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C of a foreground server: its to handle
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # our monitors are reaped by the kernel
    while True:
        try:
            data, anc, _flags, _addr = chan.recvmsg(1 << 20, socket.CMSG_SPACE(4))
        except InterruptedError:
            continue
        fds = [fd for level, kind, raw in anc for fd in _fds_of(level, kind, raw)]
        if not data:
            os._exit(0)  # the server is gone
        reply = b"err bad monitor request"
        fields = data.split(b"\0")
        if len(fields) >= 5 and fields[0] == b"monitor" and len(fds) == 1:
            try:
                pid = os.fork()
            except OSError as exc:
                reply = f"err fork: {exc}".encode()
            else:
                if pid == 0:  # pragma: no cover - the monitor
                    _monitor(server, chan, fields, fds[0])
                reply = b"ok"
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            chan.send(reply)


def _monitor(server: Server, chan: socket.socket, fields: list[bytes], status_w: int) -> NoReturn:
    code = 125
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the monitor waits for its children
        signal.signal(signal.SIGINT, signal.default_int_handler)
        chan.close()
        os.setsid()
        from portique.warm import worker

        root, runroot, cid = (os.fsdecode(f) for f in fields[1:4])
        env = [f for f in fields[5:] if b"=" in f]
        worker.become_monitor(
            server, Path(root), Path(runroot), cid, status_w, fields[4] == b"1", env
        )
    finally:
        os._exit(code)


def _fds_of(level: int, kind: int, raw: bytes) -> list[int]:
    if level != socket.SOL_SOCKET or kind != socket.SCM_RIGHTS:
        return []
    n = len(raw) - len(raw) % 4
    return [int.from_bytes(raw[i : i + 4], sys.byteorder, signed=True) for i in range(0, n, 4)]
