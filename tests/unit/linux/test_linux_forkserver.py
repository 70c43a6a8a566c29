from __future__ import annotations

import os
import threading
from collections.abc import Callable

from portique.linux.forkserver import bare_fork, trim_heap


def _run_child(body: Callable[[], int]) -> int:
    """Exit status of a bare_fork child that exits with `body()`."""
    pid = bare_fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_child_runs_python_and_exits_with_its_code() -> None:
    assert _run_child(lambda: 7 if os.getppid() > 1 else 1) == 7


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
        assert _run_child(lambda: 0 if threading.active_count() == 1 else 3) == 0
    finally:
        stop.set()
        t.join()


def test_trim_heap_returns() -> None:
    trim_heap()
