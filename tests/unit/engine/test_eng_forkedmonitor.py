from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from portique.engine import forkedmonitor, monitor


def test_args_round_trip() -> None:
    args = {"id": "abc", "log": "/r/c/abc-json.log", "oom": "", "health": "1:2:3:4", "x": "a=b"}
    assert forkedmonitor.decode_args(forkedmonitor.encode_args(args)) == args


def test_args_refuse_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        forkedmonitor.encode_args({"log": "a\0b"})


def _alive(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def test_close_all_but_keeps_only_keep() -> None:
    pid = os.fork()
    if pid == 0:  # the child: closing fds would break pytest's own
        code = 1
        try:
            fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(6)]
            keep = sorted([fds[1], fds[4]])
            forkedmonitor.close_all_but(keep)
            ok = all(_alive(fd) == (fd in keep) for fd in fds) and all(map(_alive, (0, 1, 2)))
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


class _Prepared(Exception):
    pass


def test_serve_prepares_only_after_the_container_exited(tmp_path: Path) -> None:
    """monitor.serve runs `prepare` (a forked monitor's environment) once the
    container exited, before any engine work."""
    pid = os.fork()
    if pid == 0:  # the monitor's handlers and wakeup fd stay out of pytest's process
        code = 1
        try:
            code = _serve_a_container(tmp_path)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _serve_a_container(tmp_path: Path) -> int:
    r, w = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(w)
        os.read(r, 1)  # exits once the monitor runs
        os._exit(3)
    os.close(r)
    listen = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listen.bind(str(tmp_path / "m.sock"))
    listen.listen(1)
    args = {"id": "c1", "pid": str(init), "listen": str(listen.detach())}
    args["log"] = str(tmp_path / "c1-json.log")
    seen: list[bool] = []

    def prepare() -> None:
        try:
            os.waitpid(init, os.WNOHANG)
            seen.append(False)  # still our unreaped child: too early
        except ChildProcessError:
            seen.append(True)  # reaped by the monitor first
        raise _Prepared

    os.close(w)
    try:
        monitor.serve(args, prepare)
    except _Prepared:
        return 0 if seen == [True] else 2
    return 4
