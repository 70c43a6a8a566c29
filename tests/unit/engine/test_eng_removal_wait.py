"""`run --rm` waits for its container's removal by waiting for the removal's
owner to exit (recovery._wait_exit, a pidfd), not by polling."""

from __future__ import annotations

import subprocess
import sys

from portique.engine import recovery


def test_wait_exit_returns_once_the_owner_exits() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        recovery._wait_exit(child.pid, 0.01)  # alive: back at the timeout
        assert child.poll() is None
        assert child.stdin is not None
        child.stdin.close()  # the owner finishes
        recovery._wait_exit(child.pid, 60)
        # Woken by the exit: the child is a zombie waiting for us, not running.
        with open(f"/proc/{child.pid}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] == "Z"
    finally:
        child.kill()
        child.wait()
