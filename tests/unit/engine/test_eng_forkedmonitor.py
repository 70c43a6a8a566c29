from __future__ import annotations

import os

import pytest

from portique.engine import forkedmonitor


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
