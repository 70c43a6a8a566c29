"""`start` (the exec fifo opened, the init lets go) and `run` (create, start,
and in the foreground wait for the init, then delete)."""

from __future__ import annotations

import errno
import os
import time

from portique.errors import InvalidState
from portique.linux import proc as procfs
from portique.oci.value import replace
from portique.runtime import state as st
from portique.runtime.children import death_of, reap, wait_pid
from portique.runtime.errors import failed_to_error, warn
from portique.runtime.state import Op, Status

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Callable

    from _typeshed import StrPath

    from portique.runtime.container import Runtime


def start(rt: Runtime, container_id: str) -> None:
    """Let the created container's program run (the caller holds the lock)."""
    s = rt._refresh(rt._load(container_id))
    if s.status is Status.STOPPED:
        raise InvalidState(
            f"container {container_id}: {st.refusal(s.status, Op.START)} ({death_of(s.pid)})"
        )
    st.next_status(s.status, Op.START, container_id)
    fifo = st.fifo_path(rt._dir(container_id))
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENXIO, errno.ENOENT):
            raise InvalidState(f"container {container_id}: init is not waiting to start") from None
        raise
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
    try:
        os.unlink(fifo)
    except FileNotFoundError:
        pass
    s = replace(s, status=Status.RUNNING)
    st.write_state(rt._dir(container_id), s)
    spec = rt._spec_of(s)
    if spec.hooks.poststart:
        from portique.runtime.hooks import HookError, run_hooks

        # poststart hooks run once the user program is executing.
        wait_exec(s.pid, s.start_time)
        try:
            run_hooks("poststart", spec.hooks.poststart, s.to_oci_json())
        except HookError as e:
            # The spec: a poststart failure is logged; the container runs on.
            warn(str(e))


def run(
    rt: Runtime,
    container_id: str,
    bundle: StrPath,
    detach: bool,
    console_socket: StrPath | None,
    pid_file: StrPath | None,
    no_pivot: bool,
    preserve_fds: int,
    stdio: tuple[int, int, int] | None,
    no_new_keyring: bool,
    on_pid: Callable[[int], None] | None = None,
    keep: bool = False,
) -> int:
    """create + start (+ wait and delete unless `detach`); see Runtime.run."""
    from portique.runtime import sync
    from portique.runtime.create import STEP_TIMEOUT, create

    s, chan = create(
        rt,
        container_id,
        bundle,
        console_socket,
        pid_file,
        no_pivot,
        preserve_fds,
        stdio,
        no_new_keyring,
    )
    try:
        try:
            rt.start(container_id)
        except BaseException:
            rt.delete(container_id, force=True)
            raise
        # exec success closes the init's end (O_CLOEXEC): EOF. A failed
        # exec reports its errno first.
        msg, fds = chan.recv(STEP_TIMEOUT)
        for fd in fds:
            os.close(fd)
    finally:
        chan.close()
    if isinstance(msg, sync.Failed):
        if not detach:
            reap(s.pid)
        rt.delete(container_id, force=True)
        raise failed_to_error(msg)
    if detach:
        return 0
    if on_pid is not None:
        try:
            on_pid(s.pid)
        except BaseException:
            rt.delete(container_id, force=True)
            raise
    status = wait_pid(s.pid)
    if not keep:
        rt.delete(container_id, force=True)
    return status


def wait_exec(pid: int, start_time: int, timeout: float = 60) -> None:
    """Wait until `pid` no longer runs the runtime's interpreter (it exec'd or died)."""
    # Compare files, not paths: the container may run a python at our path.
    me = os.stat("/proc/self/exe")
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while time.monotonic() < deadline and procfs.is_alive(pid, start_time or None):
        try:
            exe = os.stat(f"/proc/{pid}/exe")
            if (exe.st_dev, exe.st_ino) != (me.st_dev, me.st_ino):
                return
        except OSError:
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


__all__ = ["run", "start"]
