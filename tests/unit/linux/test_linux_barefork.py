from __future__ import annotations

import os
import threading

from portique.linux.barefork import bare_fork


def _run_child(body: str) -> int:
    """Exit status of a bare_fork child that runs `body` (an exit code expression)."""
    pid = bare_fork()
    if pid == 0:
        code = 1
        try:
            code = int(eval(body))  # noqa: S307 - the tests' own expressions
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_child_runs_python_and_exits_with_its_code() -> None:
    assert _run_child("7 if os.getppid() > 1 else 1") == 7


def test_parent_gets_child_pid() -> None:
    r, w = os.pipe()
    pid = bare_fork()
    if pid == 0:
        os.write(w, str(os.getpid()).encode())
        os._exit(0)
    os.close(w)
    try:
        assert int(os.read(r, 64)) == pid
    finally:
        os.close(r)
        os.waitpid(pid, 0)


def test_falls_back_to_os_fork_with_threads() -> None:
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        # os.fork's child runs threading's at-fork callback: one thread left.
        assert _run_child("0 if threading.active_count() == 1 else 3") == 0
    finally:
        stop.set()
        t.join()
