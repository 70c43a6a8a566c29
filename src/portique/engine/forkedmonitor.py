"""A monitor forked from the warm server (portique/warm), not re-executed.

The server's zygote (portique/warm/zygote.py) forks M, setsid'd, for a
worker's `lifecycle.start` (M outlives the server). M is a fork of the
server's frozen heap (`gc.freeze()`), so the pages it does not write stay
shared with the zygote and every other monitor. To keep it that way M does no engine work
itself:

    M: stdio to /dev/null + monitor.err, PR_SET_CHILD_SUBREAPER, comm
       `pqm-<id>` (lifecycle.is_alive), listen on m.sock, fork C
    C: create and start the container (lifecycle._launch_in_monitor: the
       journal, mounts, runtime, network, the "running" row with M's pid),
       report to the CLI on its status pipe, then hand M the monitor's
       arguments and fds over a SOCK_SEQPACKET pair and exit
    M: reap C (the container's init, an orphan, is M's child: subreaper),
       close every other fd, run monitor.main in this process

C's dirty pages (the runtime, sqlite, the bundle) die with it. A restart
(restart policy) re-executes a fresh monitor as today.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import NoReturn

from portique.engine import lifecycle


def run(root: Path, runroot: Path, cid: str, status_w: int, hold: bool) -> NoReturn:
    """Become the monitor of `cid` (in M, a fresh fork of the warm server)."""
    code = 125
    try:
        with contextlib.suppress(OSError), open("/proc/self/comm", "w") as f:
            f.write(lifecycle.monitor_name(cid))
        from portique.engine.engine import Engine
        from portique.linux.prctl import set_child_subreaper

        paths = Engine(root, runroot).paths(cid)
        lifecycle._quiet_stdio(paths)
        set_child_subreaper()
        listen_fd = lifecycle._listen(paths)
        ours, theirs = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
        )
        pid = os.fork()
        if pid == 0:  # C
            ours.close()
            _create(root, runroot, cid, listen_fd, status_w, hold, theirs)
        theirs.close()
        os.close(status_w)
        status_w = -1
        msg, fds = _receive(ours)
        ours.close()
        os.waitpid(pid, 0)
        if msg is None:
            os._exit(0)  # C failed: it reported, recorded and undid its work
        args = json.loads(msg)
        names = [k for k in ("out", "err", "in", "pty") if k in args]
        if len(fds) != len(names):
            raise OSError(f"the monitor got {len(fds)} fds for {names}")
        args.update({k: str(fd) for k, fd in zip(names, fds, strict=True)})
        args["listen"] = str(listen_fd)
        lifecycle._close_other_fds([listen_fd, *fds])
        from portique.engine import monitor

        monitor.main([f"{k}={v}" for k, v in args.items()])
        code = 0
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
            if status_w >= 0:
                os.write(status_w, f"err 125 {exc}".encode()[:4000])
    os._exit(code)


def _create(
    root: Path,
    runroot: Path,
    cid: str,
    listen_fd: int,
    status_w: int,
    hold: bool,
    chan: socket.socket,
) -> NoReturn:
    """C: create and start the container, hand M its monitor's arguments."""
    from portique.engine.engine import Engine

    def handoff(args: dict[str, str], keep: list[int]) -> NoReturn:
        names = [k for k in ("out", "err", "in", "pty") if k in args]
        fds = [int(args[k]) for k in names]
        data = json.dumps(args).encode()
        raw = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
        chan.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, raw)] if fds else [])
        os._exit(0)

    eng = Engine(root, runroot)
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


def _receive(chan: socket.socket) -> tuple[str | None, list[int]]:
    data, anc, _flags, _addr = chan.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 4))
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
    return data.decode(), fds
