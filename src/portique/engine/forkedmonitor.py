"""A monitor forked from the warm server (portique/warm), not re-executed.

The server's zygote (portique/warm/zygote.py) forks M, setsid'd, for a
worker's `lifecycle.start` (M outlives the server). M is a fork of the
server's frozen heap (`gc.freeze()`), so the pages it does not write stay
shared with the zygote and every other monitor. Python 3.11 writes the
reference count of every object it touches, and a new object lands in a
free slot of a shared page: each function M runs, each object it makes,
costs it a private 4 KiB copy (bench/monitor_pss.py measures the sum). So
M runs as little Python as it can, and every set-up step that need not be
its own is C's:

    M: comm `pqm-<id>` (lifecycle.is_alive), PR_SET_CHILD_SUBREAPER, fork C
    C: take the asker's environment (`prepare`), open monitor.err, listen
       on m.sock, create and start the container (lifecycle._launch_in_monitor:
       the journal, mounts, runtime, network, the "running" row with M's
       pid), report to the CLI on its status pipe, then hand M the monitor's
       arguments and fds over a SOCK_SEQPACKET pair and exit
    M: reap C (the container's init, an orphan, is M's child: subreaper),
       stdio onto /dev/null and monitor.err, close every other fd, run the
       monitor loop in this process; `prepare` (the environment, faults)
       only once the container exited, before the engine work

C's dirty pages (the runtime, sqlite, the bundle) die with it. A restart
(restart policy) re-executes a fresh monitor as today.
"""

from __future__ import annotations

import _socket
import contextlib
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

# Imported here, not where used: an import statement run in M costs it pages.
from portique.engine import lifecycle, monitor
from portique.linux.prctl import set_child_subreaper

# The fds C hands M, in this order: then the container's stdio ("out", "err",
# "in", "pty": those of them it has).
FIXED_FDS = ("listen", "null", "merr")
STDIO_FDS = ("out", "err", "in", "pty")
MAX_FDS = len(FIXED_FDS) + len(STDIO_FDS)

Prepare = Callable[[], None]


def run(
    root: str,
    runroot: str,
    cid: str,
    status_w: int,
    hold: bool,
    prepare: Prepare,
    go_r: int = -1,
) -> NoReturn:
    """Become the monitor of `cid` (in M, a fresh fork of the warm server).

    `prepare()` makes this process the asker's (its environment, the fault
    points): called in C, and in M only once the container exited. An early
    monitor (prefork.fork_early: `cid` "", `go_r`) is asked for while its
    container's row is made: C readies itself, then reads the id from `go_r`
    and tells it M (end-of-file: no container after all, both exit)."""
    code = 125
    try:
        if cid:
            _set_comm(lifecycle.monitor_name(cid))
        set_child_subreaper()
        # _socket's: socket.socketpair wraps each end in Python code to run.
        ours, theirs = _socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
        )
        pid = os.fork()
        if pid == 0:  # C
            ours.close()
            _create(root, runroot, cid, status_w, hold, theirs, prepare, go_r)
        theirs.close()
        os.close(status_w)
        status_w = -1
        if go_r >= 0:
            os.close(go_r)
        if not cid:
            # C's first message, before it creates anything: the id. Named
            # before C goes on (lifecycle.is_alive knows a monitor by its name).
            cid = ours.recv(256).decode()
            if not cid:
                os.waitpid(pid, 0)
                os._exit(0)
            _set_comm(lifecycle.monitor_name(cid))
            ours.send(b"ok")
        args, fds = _receive(ours)
        ours.close()
        os.waitpid(pid, 0)
        if args is None:
            os._exit(0)  # C failed: it reported, recorded and undid its work
        _settle(args, fds)
        monitor.serve(args, prepare)
        code = 0
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
            if status_w >= 0:
                os.write(status_w, f"err 125 {exc}".encode()[:4000])
    os._exit(code)


def _set_comm(name: str) -> None:
    """/proc/self/comm with bare fds: no file object to build in M."""
    with contextlib.suppress(OSError):
        fd = os.open("/proc/self/comm", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, name.encode())
        finally:
            os.close(fd)


def _settle(args: dict[str, str], fds: list[int]) -> None:
    """M: stdio onto C's /dev/null and monitor.err, the fds' numbers into
    `args`, every other fd closed (a fork of the server may hold its fds)."""
    names = [*FIXED_FDS, *(k for k in STDIO_FDS if k in args)]
    if len(fds) != len(names):
        raise OSError(f"the monitor got {len(fds)} fds for {names}")
    got = dict(zip(names, fds, strict=True))
    null, merr = got.pop("null"), got.pop("merr")
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(merr, 2)
    os.close(null)
    os.close(merr)
    for k, fd in got.items():
        args[k] = str(fd)
    close_all_but(sorted(got.values()))


def close_all_but(keep: list[int]) -> None:
    """Close every fd above 2 but the sorted `keep` (close_range(2): no
    listing of /proc/self/fd, no objects)."""
    low = 3
    for fd in keep:
        if fd > low:
            os.closerange(low, fd)
        low = max(low, fd + 1)
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _create(
    root: str,
    runroot: str,
    cid: str,
    status_w: int,
    hold: bool,
    chan: _socket.socket,
    prepare: Prepare,
    go_r: int,
) -> NoReturn:
    """C: create and start the container, hand M its monitor's arguments."""
    import signal

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote's SIG_IGN: C waits for its own
    signal.signal(signal.SIGINT, signal.default_int_handler)
    prepare()
    from portique.engine.engine import Engine

    eng = Engine(Path(root), Path(runroot))
    if not cid:
        # Opened while the asker makes the row: the database, the image store.
        eng.db  # noqa: B018
        eng.images  # noqa: B018
        cid = _read_id(go_r)
        if not cid:
            os._exit(0)  # no container after all: M reads end-of-file and exits
        chan.send(cid.encode())
        if chan.recv(16) != b"ok":
            os._exit(125)
    paths = eng.paths(cid)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    merr = os.open(
        paths.run_dir / "monitor.err", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
    )
    lifecycle._quiet_stdio(paths)
    listen_fd = lifecycle._listen(paths)

    def handoff(args: dict[str, str], keep: list[int]) -> NoReturn:
        fds = [listen_fd, null, merr, *(int(args[k]) for k in STDIO_FDS if k in args)]
        raw = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
        chan.sendmsg([encode_args(args)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, raw)])
        os._exit(0)

    lifecycle._launch_in_monitor(
        eng,
        cid,
        listen_fd,
        status_w,
        hold=hold,
        restart_count=None,
        handoff=handoff,
        monitor_pid=os.getppid(),
    )


def _read_id(go_r: int) -> str:
    """The id the asker writes to `go_r` before closing it ("" when it closes
    it unwritten); anything but an engine's id (hex) is refused."""
    data = b""
    while chunk := os.read(go_r, 256):
        data += chunk
        if len(data) > 128:
            break
    os.close(go_r)
    cid = data.decode("ascii", "replace")
    if cid and not (len(cid) <= 128 and all(c in "0123456789abcdef" for c in cid)):
        raise ValueError(f"a monitor was given a bad container id {cid[:20]!r}")
    return cid


def encode_args(args: dict[str, str]) -> bytes:
    """The monitor's arguments, NUL-separated `key=value` (M parses them with
    split and partition: no json decoder to run there)."""
    items = [f"{k}={v}" for k, v in args.items()]
    if any("\0" in item for item in items):
        raise ValueError("a monitor argument holds a NUL byte")
    return "\0".join(items).encode()


def decode_args(data: bytes) -> dict[str, str]:
    out = {}
    for item in data.decode().split("\0"):
        k, _, v = item.partition("=")
        out[k] = v
    return out


def _receive(chan: _socket.socket) -> tuple[dict[str, str] | None, list[int]]:
    data, anc, _flags, _addr = chan.recvmsg(1 << 16, socket.CMSG_SPACE(4 * MAX_FDS))
    fds: list[int] = []
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            n = len(raw) - len(raw) % 4
            fds += [
                int.from_bytes(raw[i : i + 4], sys.byteorder, signed=True) for i in range(0, n, 4)
            ]
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    return decode_args(data), fds
