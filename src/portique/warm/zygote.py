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

Both warm processes use it: the CLI's fork-server (warm/server.py, which
asks over the channel it holds) and `portique serve` (api/server.py), whose
workers share the channel and so each send a reply fd of their own with the
request (`spawner`). `forget(keep)` drops the parent's fds and handlers
but `keep` in the zygote and again in each monitor.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]
import contextlib
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from portique.linux.forkserver import bare_fork, trim_heap

COMM = "pq-zygote"  # /proc/PID/comm: how `ps` and the tests tell it from a worker
REPLY_TIMEOUT = 10.0  # a zygote that does not answer in this long is given up

Forget = Callable[[set[int]], None]


def start(forget: Forget) -> socket.socket | None:
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
            _serve(forget, theirs)
        except BaseException:
            code = 1
        os._exit(code)
    theirs.close()
    ours.settimeout(REPLY_TIMEOUT)  # a zygote that hangs is dropped (the server forks)
    return ours


def _serve(forget: Forget, chan: socket.socket) -> NoReturn:
    forget({chan.fileno()})
    # What the server freed, before the monitors map (and share the cost of)
    # every page this process holds.
    gc.collect()
    trim_heap()
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as f:
        f.write(COMM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C of a foreground server: its to handle
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # our monitors are reaped by the kernel
    while True:
        try:
            data, anc, _flags, _addr = chan.recvmsg(1 << 20, socket.CMSG_SPACE(4 * 3))
        except InterruptedError:
            continue
        fds = [fd for level, kind, raw in anc for fd in _fds_of(level, kind, raw)]
        if not data:
            os._exit(0)  # the server is gone
        reply = b"err bad monitor request"
        # The environment stays one blob (its creator splits it): every object
        # made here is freed at the next request, a write to a page the
        # monitor forked now would otherwise keep a copy of alone.
        fields = data.split(b"\0", 5)
        # fds: status_w, go_r (an early request), the asker's own reply socket
        # (spawner) or none.
        ours = fd_count(fields[0]) if len(fields) >= 5 else 0
        if ours and len(fds) in (ours, ours + 1):
            try:
                # This zygote has one thread and imports nothing: its monitors
                # need not pay for the interpreter's at-fork callbacks.
                pid = bare_fork()
            except OSError as exc:
                reply = f"err fork: {exc}".encode()
            else:
                if pid == 0:  # pragma: no cover - the monitor
                    go_r = fds[1] if ours == 2 else -1
                    _monitor(chan, fields, fds[0], go_r, fds[ours:])
                reply = b"ok"
        with contextlib.suppress(OSError):
            n = ours or 1
            if len(fds) == n + 1:  # the asker's own reply socket
                os.write(fds[n], reply)
            else:
                chan.send(reply)
        for fd in fds:
            os.close(fd)


def fd_count(kind: bytes) -> int:
    """How many fds a request of `kind` carries before the optional reply
    socket: status_w, then go_r for an early one (0: not a request)."""
    return {b"monitor": 1, b"monitor-early": 2}.get(kind, 0)


def _monitor(
    chan: socket.socket, fields: list[bytes], status_w: int, go_r: int, others: list[int]
) -> NoReturn:
    """M: everything else a monitor needs is C's to do (engine/forkedmonitor.py):
    each line run here costs every monitor private pages."""
    code = 125
    try:
        # The monitor waits for its children (C, then the container's init).
        # _signal's: signal.signal maps the result to an enum in Python code.
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        chan.close()
        for fd in others:
            os.close(fd)
        os.setsid()
        from portique.warm import worker

        # This zygote dropped the server's fds and handlers when it started.
        worker.become_monitor(None, fields, status_w, go_r)
    finally:
        os._exit(code)


def _fds_of(level: int, kind: int, raw: bytes) -> list[int]:
    if level != socket.SOL_SOCKET or kind != socket.SCM_RIGHTS:
        return []
    n = len(raw) - len(raw) % 4
    return [int.from_bytes(raw[i : i + 4], sys.byteorder, signed=True) for i in range(0, n, 4)]


def request(root: Path, runroot: Path, cid: str, hold: bool, *, early: bool = False) -> bytes:
    """A monitor request: the container, and the asker's environment (the
    monitor takes it, as a monitor re-executed by the asker would). `early`:
    no id yet (`cid` ""), the monitor reads it from the go_r fd sent along."""
    kind = b"monitor-early" if early else b"monitor"
    fields = [kind, os.fsencode(root), os.fsencode(runroot), cid.encode()]
    fields += [b"1" if hold else b"0"]
    fields += [k + b"=" + v for k, v in os.environb.items()]
    return b"\0".join(fields)


def spawner(chan: socket.socket) -> Callable[[Path, Path, str, int, bool], bool | None]:
    """lifecycle.MONITOR_SPAWNER for a process that shares the zygote's
    channel with others (the API's workers): the reply comes back on a
    socket of this request's own, so no asker reads another's answer. False
    when the zygote is gone before it got the request (nothing started)."""

    def spawn(root: Path, runroot: Path, cid: str, status_w: int, hold: bool) -> bool | None:
        mine, theirs = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
        )
        with mine:
            try:
                raw = b"".join(
                    fd.to_bytes(4, sys.byteorder, signed=True) for fd in (status_w, theirs.fileno())
                )
                chan.sendmsg(
                    [request(root, runroot, cid, hold)],
                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, raw)],
                )
            except OSError:
                return False  # the zygote is gone (EPIPE, ECONNRESET): nothing started
            finally:
                theirs.close()
            mine.settimeout(REPLY_TIMEOUT)
            reply = mine.recv(4096)
        if reply != b"ok":
            raise OSError(f"the monitors' zygote could not start a monitor: {reply.decode()!r}")
        return True

    return spawn
