"""`exec`: a new process inside a running container.

The runtime forks a helper that makes itself non-dumpable (CVE-2019-5736
class: while it is visible inside the container, no container process may
open its /proc/<pid>/exe or fds), joins the container's cgroup and
namespaces (user first, mount last), then forks again so the process is a
member of the container's pid namespace, and applies the process spec.

The runtime holds both through pidfds (the helper's opened at fork, the
process's sent by the helper with its pid): a clean-up after a failure
signals and reaps them through those, never through a pid that may have
been reaped and handed to another process meanwhile.
"""

from __future__ import annotations

import os

from portique.linux import ns, prctl
from portique.linux import proc as procfs
from portique.runtime import sync
from portique.runtime.children import Child, fork
from portique.runtime.errors import ContainerError, failed_to_error
from portique.runtime.undo import Undo

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
    from typing import NoReturn

    from _typeshed import StrPath

    from portique.linux.kernel import Kernel
    from portique.oci.runtime import Personality, Process, Spec
    from portique.runtime.cgroups import CgroupManager
    from portique.runtime.process import Loadable
    from portique.runtime.state import State
else:
    import _signal as signal  # the numbers and calls, without signal's enum wrappers

_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def exec_process(
    kernel: Kernel,
    s: State,
    spec: Spec,
    process: Process,
    manager: CgroupManager,
    *,
    seccomp_cache: StrPath | None = None,
    detach: bool,
    console_socket: StrPath | None,
    pid_file: StrPath | None,
    stdio: tuple[int, int, int] | None,
    preserve_fds: int,
    on_pid: Callable[[int], None] | None = None,
) -> int:
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
        child = _start(
            kernel,
            s,
            spec,
            process,
            manager,
            console_socket,
            pid_file,
            stdio,
            preserve_fds,
            seccomp_cache,
        )
        try:
            if on_pid is not None:
                try:
                    on_pid(child.pid)
                except BaseException:
                    child.kill()
                    raise
            if detach:
                return child.pid
            status = child.wait()
            return 0 if status is None else status
        finally:
            child.close()
    finally:
        prctl.set_child_subreaper(was_subreaper)


def _start(
    kernel: Kernel,
    s: State,
    spec: Spec,
    process: Process,
    manager: CgroupManager,
    console_socket: StrPath | None,
    pid_file: StrPath | None,
    stdio: tuple[int, int, int] | None,
    preserve_fds: int,
    seccomp_cache: StrPath | None,
) -> Child:
    """Fork the helper, drive it; the started process, held by its pidfd."""
    from portique.runtime.create import connect_console_socket, send_console

    with Undo() as undo:
        ns_stack = undo.enter_context(Undo())
        ns_fds = _open_namespaces(s, spec, ns_stack)
        console = connect_console_socket(console_socket, undo) if process.terminal else None
        from portique.runtime.process import build_seccomp, preload_modules

        preload_modules(kernel, process.terminal)
        seccomp = build_seccomp(spec.linux.seccomp, seccomp_cache)
        parent, child = sync.Channel.pair()
        undo.callback(parent.close)
        helper_pid = fork()
        if helper_pid == 0:
            parent.close()
            _helper(
                child,
                kernel,
                manager.join,
                ns_fds,
                seccomp,
                process,
                stdio,
                preserve_fds,
                spec.linux.personality,
                not s.no_new_keyring,
            )
        child.close()
        ns_stack.close()  # the helper has its copies
        helper = Child.of(helper_pid)
        undo.callback(helper.close)
        undo.callback(helper.kill)
        parent.send(sync.Go())
        started: Child | None = None
        for _ in range(8):
            msg, fds = parent.recv(600.0)
            if isinstance(msg, sync.InitPid) and fds and started is None:
                started = Child(msg.pid, fds[0])
                for extra in fds[1:]:
                    os.close(extra)
                undo.callback(started.close)
                undo.callback(started.kill)
                helper.wait()
                if pid_file is not None:
                    from portique.fileio import atomic_write

                    atomic_write(os.path.abspath(pid_file), f"{msg.pid}".encode())
            elif isinstance(msg, sync.Pty):
                try:
                    send_console(console, fds)
                finally:
                    for fd in fds:
                        os.close(fd)
            elif isinstance(msg, sync.Failed):
                raise failed_to_error(msg)
            elif msg is None:
                break  # exec succeeded: the socket closed on exec
            else:
                for fd in fds:
                    os.close(fd)
                raise ContainerError(f"exec: unexpected message {msg.kind}")
        if started is None:
            raise ContainerError("exec: the helper exited before starting the process")
        undo.pop_all()
        helper.close()
        parent.close()
        if console is not None:
            console.close()
    return started


def _open_namespaces(s: State, spec: Spec, undo: Undo) -> list[tuple[str, int]]:
    """fds of the init's namespaces, opened before fork and checked against pid reuse."""
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
    kernel: Kernel,
    join_cgroup: Callable[[], None],
    ns_fds: list[tuple[str, int]],
    seccomp: Loadable | None,
    process: Process,
    stdio: tuple[int, int, int] | None,
    preserve_fds: int,
    personality: Personality | None,
    new_keyring: bool,
) -> NoReturn:
    from portique.runtime import init as _init  # imported before setns(mnt)
    from portique.runtime.init import _fail, dup_stdio, fork_after_report

    del _init
    try:
        join_cgroup()  # this process moves itself: the cheap way (CgroupManager.join)
        kernel.set_dumpable(False)
        kernel.set_pdeathsig(signal.SIGKILL)
        dup_stdio(stdio)
        chan.expect(sync.Go)
        own_user = any(k == "user" for k, _ in ns_fds)
        for kind, fd in ns_fds:
            # Joining our own namespace again is harmless except for user,
            # where setns to the current one is EINVAL: skip identical ones.
            if _same_ns(kind, fd):
                continue
            kernel.setns(fd, ns.NAMESPACES[kind][0])
            if kind == "user":
                kernel.setresgid(0, 0, 0)
                kernel.setresuid(0, 0, 0)
        for _, fd in ns_fds:
            os.close(fd)
        pid = fork_after_report(chan)  # the pid namespace applies to children only
        if pid == 0:
            _process(
                chan, kernel, seccomp, process, preserve_fds, own_user, personality, new_keyring
            )
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
    kernel: Kernel,
    seccomp: Loadable | None,
    process: Process,
    preserve_fds: int,
    userns: bool,
    personality: Personality | None,
    new_keyring: bool,
) -> NoReturn:
    """The exec'd process: as the init, everything first, then the seccomp
    filter and execve alone (process.exec_last)."""
    from portique.runtime.init import (
        _fail,
        finish_process,
        join_session_keyring,
        write_oom_score_adj,
    )
    from portique.runtime.process import env_dict, exec_last, find_executable

    try:
        kernel.set_pdeathsig(0)
        os.setsid()
        if new_keyring:
            join_session_keyring(kernel)
        if process.oom_score_adj is not None:
            write_oom_score_adj(process.oom_score_adj)
        finish_process(
            chan, process, seccomp, {chan.fileno()}, preserve_fds, userns, personality, kernel
        )
        env = env_dict(process)
        path = find_executable(process.args[0], env)
        exec_last(path, process, env, seccomp, chan.fileno())
    except BaseException as e:
        _fail(chan, e)
