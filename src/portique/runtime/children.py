"""The runtime's own processes: forked only while single-threaded and from a
protected interpreter, signalled and reaped through pidfds where the runtime
holds one, waited for and reaped by pid where it inherited them as a
subreaper.

A pid names a process only until someone reaps it; then the kernel may
hand it to any new process. A `Child` keeps a pidfd, which always names the
same process: signalling it after the reap fails with ESRCH instead of
hitting a stranger, and it is reaped through the pidfd once, at most.
"""

from __future__ import annotations

import builtins
import os
import sys
import time

from portique.linux import proc as procfs
from portique.runtime.errors import ContainerError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    import _signal as signal  # the numbers and calls, without signal's enum wrappers


def fork() -> int:
    """os.fork, refused while other threads run or from an unprotected interpreter."""
    # A fork of a multi-threaded process may deadlock in the child on a lock
    # another thread held; the runtime forks only while single-threaded.
    # threading not imported means no Python thread was ever started.
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() != 1:
        raise ContainerError("the runtime cannot fork while other threads run")
    # The child is a container process: until its execve, the container sees
    # this interpreter as /proc/self/exe and could reopen it for writing
    # (linux/selfexe.py). Never from a file it could write.
    from portique.linux import selfexe

    if selfexe.protection() is None:
        raise ContainerError(
            f"refusing to start a container process from {os.readlink(selfexe.SELF_EXE)}: "
            "a container could rewrite this interpreter through /proc/self/exe "
            "(start through portique or portique-runtime, or call "
            "portique.linux.selfexe.ensure_protected() first)"
        )
    return os.fork()


class Child:
    """A process held through a pidfd (our child, or one reported by a child
    together with its pidfd): signalled and reaped through it, never by pid."""

    __slots__ = ("fd", "pid", "status")

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self.fd = pidfd
        self.status: int | None = None  # exit code once reaped

    @classmethod
    def of(cls, pid: int) -> Child:
        """Hold our own child `pid`, not yet reaped (so the pid is still its)."""
        return cls(pid, os.pidfd_open(pid))

    def signal(self, sig: int) -> None:
        """Send `sig`; nothing if the process is gone (reaped or not)."""
        try:
            signal.pidfd_send_signal(self.fd, sig)
        except ProcessLookupError:
            pass

    def wait(self) -> int | None:
        """Reap it (blocking) and return its exit code (128+N for signal N);
        None when it is not our child (someone else reaps it)."""
        if self.status is None:
            try:
                res = os.waitid(os.P_PIDFD, self.fd, os.WEXITED)
            except ChildProcessError:
                return None
            assert res is not None  # no WNOHANG: waitid returns a result
            code = res.si_status
            self.status = code if res.si_code == os.CLD_EXITED else 128 + code
        return self.status

    def kill(self) -> None:
        """SIGKILL and reap, if it is ours to reap; safe to call again."""
        self.signal(signal.SIGKILL)
        self.wait()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def exit_code(status: int) -> int:
    """A wait status as a shell would report it (128+N for signal N)."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def reap(pid: int) -> int | None:
    """Reap our child `pid` (blocking); its wait status, None if not ours."""
    try:
        _, status = os.waitpid(pid, 0)
        return status
    except ChildProcessError:
        return None


def reap_quiet(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def kill_quiet(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def reap_killed(pids: builtins.list[int], timeout: float = 5.0) -> None:
    """Reap those of `pids` (just sent SIGKILL) that are our children."""
    waiting = set(pids)
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while waiting and time.monotonic() < deadline:
        for pid in builtins.list(waiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid  # not ours (or already reaped): nothing to do
            if done:
                waiting.discard(pid)
        if waiting:
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


def wait_pid(pid: int) -> int:
    """Wait for `pid` to end; its exit code when it is our child, else 0."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            # Not our child (no subreaper above us): poll until it is gone.
            while procfs.is_alive(pid):
                time.sleep(0.01)
            return 0
        return exit_code(status)


def death_of(pid: int) -> str:
    """How the init ended, when it is our child (we are its subreaper)."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return "its init is gone"
    if not done:
        return "its init is not the process it was"
    if os.WIFSIGNALED(status):
        return f"its init was killed by signal {os.WTERMSIG(status)}"
    return f"its init exited with status {os.WEXITSTATUS(status)}"


__all__ = [
    "Child",
    "death_of",
    "exit_code",
    "fork",
    "kill_quiet",
    "reap",
    "reap_killed",
    "reap_quiet",
    "wait_pid",
]
