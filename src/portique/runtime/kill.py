"""`kill`: a signal to the init (through a pidfd, after checking it is still
the init), or with `all` to every process of the container's cgroup."""

from __future__ import annotations

import os

from portique.errors import InvalidState
from portique.linux import proc as procfs
from portique.runtime import state as st
from portique.runtime.children import kill_quiet, reap_killed
from portique.runtime.state import Op, State, Status

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    import signal

    from portique.runtime.container import Runtime
else:
    import _signal as signal  # the numbers and calls, without signal's enum wrappers


def kill(rt: Runtime, container_id: str, sig: int, *, all: bool = False) -> None:
    s = rt._refresh(rt._load(container_id))
    st.next_status(s.status, Op.KILL, container_id)
    if all:
        manager = rt._manager(s)
        pids = manager.pids()
        for pid in pids:
            kill_quiet(pid, sig)
        if sig == signal.SIGKILL:
            if s.status is Status.PAUSED:
                manager.thaw()  # frozen tasks die only once thawed
            # As a subreaper (a foreground `run`, a monitor), orphans of
            # the container are our children; once dead they leave the
            # cgroup, where delete no longer finds them: reap them now.
            reap_killed(pids)
        return
    signal_init(s, sig)


def signal_init(s: State, sig: int, *, quiet: bool = False) -> None:
    """Signal the init through a pidfd, after checking it is still ours."""
    if s.pid <= 0:
        return
    try:
        pidfd = os.pidfd_open(s.pid)
    except ProcessLookupError:
        if quiet:
            return
        raise InvalidState(f"container {s.id}: {st.NOT_RUNNING}") from None
    try:
        if s.start_time and procfs.start_time(s.pid) != s.start_time:
            if quiet:
                return
            raise InvalidState(f"container {s.id}: {st.NOT_RUNNING}")
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        if not quiet:
            raise InvalidState(f"container {s.id}: {st.NOT_RUNNING}") from None
    finally:
        os.close(pidfd)


__all__ = ["kill", "signal_init"]
