"""`exec`: a new process inside a running container.

The runtime forks a helper that makes itself non-dumpable (CVE-2019-5736
class: while it is visible inside the container, no container process may
open its /proc/<pid>/exe or fds), joins the container's cgroup and
namespaces (user first, mount last), then forks again so the process is a
member of the container's pid namespace, and applies the process spec.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from portique.linux import ns, prctl
from portique.linux import proc as procfs
from portique.runtime import sync

if TYPE_CHECKING:
    from collections.abc import Callable

    from portique.oci.runtime import Personality, Process, Spec
    from portique.runtime.cgroups import CgroupManager
    from portique.runtime.process import Loadable
    from portique.runtime.state import State

_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def exec_process(
    s: State,
    spec: Spec,
    process: Process,
    manager: CgroupManager,
    *,
    detach: bool,
    console_socket: Path | None,
    pid_file: Path | None,
    stdio: tuple[int, int, int] | None,
    preserve_fds: int,
    on_pid: Callable[[int], None] | None = None,
) -> int:
    from portique.runtime.container import _exit_code

    if process.terminal and console_socket is None:
        from portique.errors import InvalidArgument

        raise InvalidArgument("process.terminal needs a console socket (--console-socket)")
    # A detached process must not become our child when the helper exits
    # (nobody here would reap it, and a zombie in a pid namespace keeps its
    # init from ever finishing): stop being a subreaper until the helper is gone.
    # In the foreground we are a subreaper until the process is reaped, and
    # only then: a library caller left one would inherit every later orphan.
    was_subreaper = prctl.is_child_subreaper()
    prctl.set_child_subreaper(not detach)
    try:
        pid = _start(
            s, spec, process, manager, console_socket, pid_file, stdio, preserve_fds, on_pid
        )
        if detach:
            return pid
        _, status = os.waitpid(pid, 0)
        return _exit_code(status)
    finally:
        prctl.set_child_subreaper(was_subreaper)


def _start(
    s: State,
    spec: Spec,
    process: Process,
    manager: CgroupManager,
    console_socket: Path | None,
    pid_file: Path | None,
    stdio: tuple[int, int, int] | None,
    preserve_fds: int,
    on_pid: Callable[[int], None] | None,
) -> int:
    """Fork the helper, drive it, return the host pid of the started process."""
    from contextlib import ExitStack

    from portique.runtime.container import (
        ContainerError,
        _connect_console_socket,
        _failed_to_error,
        _fork,
        _kill_and_reap,
        _reap,
        _send_console,
    )

    with ExitStack() as undo:
        ns_stack = undo.enter_context(ExitStack())
        ns_fds = _open_namespaces(s, spec, ns_stack)
        console = _connect_console_socket(console_socket, undo) if process.terminal else None
        from portique.runtime.process import build_seccomp, preload_modules

        preload_modules(process.terminal)
        seccomp = build_seccomp(spec.linux.seccomp)
        parent, child = sync.Channel.pair()
        undo.callback(parent.close)
        helper = _fork()
        if helper == 0:
            parent.close()
            _helper(
                child,
                manager.join,
                ns_fds,
                seccomp,
                process,
                stdio,
                preserve_fds,
                spec.linux.personality,
            )
        child.close()
        ns_stack.close()  # the helper has its copies
        undo.callback(_kill_and_reap, helper)
        parent.send(sync.Go())
        pid = 0
        for _ in range(8):
            msg, fds = parent.recv(600.0)
            if isinstance(msg, sync.InitPid):
                pid = msg.pid
                _reap(helper)
                if pid_file is not None:
                    from portique.fileio import atomic_write

                    atomic_write(Path(os.path.abspath(pid_file)), f"{pid}".encode())
                if on_pid is not None:
                    on_pid(pid)
            elif isinstance(msg, sync.Pty):
                try:
                    _send_console(console, fds)
                finally:
                    for fd in fds:
                        os.close(fd)
            elif isinstance(msg, sync.Failed):
                if pid:
                    _reap(pid)
                raise _failed_to_error(msg)
            elif msg is None:
                break  # exec succeeded: the socket closed on exec
            else:
                raise ContainerError(f"exec: unexpected message {msg.kind}")
        if not pid:
            raise ContainerError("exec: the helper exited before starting the process")
        undo.pop_all()
        parent.close()
        if console is not None:
            console.close()
    return pid


def _open_namespaces(s: State, spec: Spec, undo: Any) -> list[tuple[str, int]]:
    """fds of the init's namespaces, opened before fork and checked against pid reuse."""
    from portique.runtime.container import ContainerError

    out: list[tuple[str, int]] = []
    types = {n.type for n in spec.linux.namespaces}
    for kind in _ORDER:
        if kind not in types:
            continue
        name = ns.NAMESPACES[kind][1]
        try:
            fd = os.open(f"/proc/{s.pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise ContainerError(
                f"exec: cannot open {name} namespace of {s.pid}: {e.strerror}"
            ) from None
        undo.callback(os.close, fd)
        out.append((kind, fd))
    if not procfs.is_alive(s.pid, s.start_time or None):
        from portique.errors import InvalidState
        from portique.runtime.state import NOT_RUNNING

        raise InvalidState(f"container {s.id}: {NOT_RUNNING}")
    return out


def _helper(
    chan: sync.Channel,
    join_cgroup: Callable[[], None],
    ns_fds: list[tuple[str, int]],
    seccomp: Loadable | None,
    process: Process,
    stdio: tuple[int, int, int] | None,
    preserve_fds: int,
    personality: Personality | None,
) -> NoReturn:
    from portique.runtime import init as _init  # imported before setns(mnt)
    from portique.runtime.init import _fail, dup_stdio, fork_after_report

    del _init
    try:
        join_cgroup()  # this process moves itself: the cheap way (CgroupManager.join)
        prctl.set_dumpable(False)
        prctl.set_pdeathsig(signal.SIGKILL)
        dup_stdio(stdio)
        chan.expect(sync.Go)
        own_user = any(k == "user" for k, _ in ns_fds)
        for kind, fd in ns_fds:
            # Joining our own namespace again is harmless except for user,
            # where setns to the current one is EINVAL: skip identical ones.
            if _same_ns(kind, fd):
                continue
            ns.setns(fd, ns.NAMESPACES[kind][0])
            if kind == "user":
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
        for _, fd in ns_fds:
            os.close(fd)
        pid = fork_after_report(chan)  # the pid namespace applies to children only
        if pid == 0:
            _process(chan, seccomp, process, preserve_fds, own_user, personality)
    except BaseException as e:
        _fail(chan, e)
    os._exit(0)


def _same_ns(kind: str, fd: int) -> bool:
    try:
        mine = os.stat(f"/proc/self/ns/{ns.NAMESPACES[kind][1]}")
    except OSError:
        return False
    theirs = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def _process(
    chan: sync.Channel,
    seccomp: Loadable | None,
    process: Process,
    preserve_fds: int,
    userns: bool,
    personality: Personality | None,
) -> NoReturn:
    """The exec'd process: as the init, everything first, then the seccomp
    filter and execve alone (process.exec_last)."""
    from portique.runtime.init import _fail, finish_process, write_oom_score_adj
    from portique.runtime.process import env_dict, exec_last, find_executable

    try:
        prctl.set_pdeathsig(0)
        os.setsid()
        if process.oom_score_adj is not None:
            write_oom_score_adj(process.oom_score_adj)
        finish_process(chan, process, seccomp, {chan.fileno()}, preserve_fds, userns, personality)
        env = env_dict(process)
        path = find_executable(process.args[0], env)
        exec_last(path, process, env, seccomp, chan.fileno())
    except BaseException as e:
        _fail(chan, e)
