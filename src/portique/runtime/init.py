"""The child side of creation: stage 1 (namespaces) and the container init.

Both run in processes forked from the runtime (no re-exec of an
interpreter: the runtime is single-threaded when it forks). Neither ever
returns: each ends in os._exit or execve. Errors travel to the parent as a
`Failed` message (runtime/sync.py has the protocol table).
"""

from __future__ import annotations

import os

from portique.linux import ns
from portique.oci.runtime import Namespace, Personality, Process, Spec, TimeOffset
from portique.oci.value import value
from portique.runtime import sync
from portique.runtime.errors import os_message, step
from portique.runtime.process import ExecError, Loadable

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
    from typing import NoReturn

    from portique.linux.kernel import Kernel
    from portique.runtime.mountplan import CgroupInfo
else:
    import _signal as signal  # the numbers and calls, without signal's enum wrappers


@value
class InitConfig:
    """Everything the children need, computed by the parent before fork."""

    spec: Spec
    process: Process
    rootfs: str
    bundle: str
    fifo: str
    cgroup: CgroupInfo | None
    no_pivot: bool
    preserve_fds: int
    stdio: tuple[int, int, int] | None
    new_keyring: bool = True
    seccomp: Loadable | None = None  # compiled by the parent (process.build_seccomp)


def _fail(chan: sync.Channel, exc: BaseException) -> NoReturn:
    if isinstance(exc, ExecError):
        kind, msg = exc.error, exc.message
    elif isinstance(exc, OSError):
        kind, msg = "error", str(exc) if exc.strerror is None else os_message(exc)
    else:
        kind, msg = "error", str(exc) or type(exc).__name__
    if os.environ.get("PORTIQUE_RUNTIME_DEBUG"):
        try:
            import traceback

            msg += "\n" + "".join(traceback.format_exception(exc))
        except ImportError:
            pass
    try:
        chan.send(sync.Failed(kind, msg))
    except OSError:
        # Nobody listens any more (create returned): say it on stderr.
        try:
            os.write(2, f"portique-runtime: {msg}\n".encode())
        except OSError:
            pass
    os._exit({"notfound": 127, "notexec": 126}.get(kind, 1))


def dup_stdio(stdio: tuple[int, int, int] | None) -> None:
    if stdio is None:
        return
    # Duplicate first, then place: stdio=(5, 1, 1) must not clobber 1 early.
    tmp = [os.dup(fd) for fd in stdio]
    for target, fd in enumerate(tmp):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)


# ---------------------------------------------------------------- stage 1


def stage1(
    chan: sync.Channel, cfg: InitConfig, join_cgroup: Callable[[], None], kernel: Kernel
) -> NoReturn:
    """Join the container's cgroup (`join_cgroup`: this process moves itself,
    the cheap way, see CgroupManager.join) and its namespaces, create the new
    ones, then fork the init (PID 1 of a new pid ns)."""
    try:
        with step("cgroup: moving the container's first process in"):
            join_cgroup()
        kernel.set_dumpable(False)
        kernel.set_pdeathsig(signal.SIGKILL)
        dup_stdio(cfg.stdio)
        # Opened before any namespace: a mapped root in a user namespace
        # could not open the runtime's fifo, a joined mount ns not see it.
        fifo_fd = os.open(cfg.fifo, os.O_RDWR | os.O_CLOEXEC)
        chan.expect(sync.Go)
        linux = cfg.spec.linux
        idmapped: dict[int, int] = {}
        if any(mnt.idmap for mnt in cfg.spec.mounts):
            # Still in the runtime's namespaces: see runtime/idmap.py.
            from portique.runtime.idmap import open_idmapped

            idmapped = open_idmapped(cfg.spec, cfg.bundle, kernel)
        join_namespaces(linux.namespaces, kernel)
        userns = linux.has_new("user")
        if userns:
            # An unprivileged runtime (runc's rootless mode) writes the maps
            # as an ordinary user: /proc/<pid>/uid_map of a non-dumpable
            # process is root's. Dumpable only until they are written, still
            # outside the container's pid namespace.
            unprivileged = os.geteuid() != 0
            with step("linux.namespaces: new user namespace"):
                kernel.unshare(ns.CLONE_NEWUSER)
            if unprivileged:
                kernel.set_dumpable(True)
            chan.send(sync.MapIds(os.getpid()))
            chan.expect(sync.MapIdsDone)
            if unprivileged:
                kernel.set_dumpable(False)
        if userns or linux.namespace("user") is not None:
            kernel.setresgid(0, 0, 0)
            kernel.setresuid(0, 0, 0)
        flags = 0
        for n in linux.namespaces:
            # A joined mount namespace still gets a private copy: the rootfs
            # set-up and pivot_root below must never act on the namespace
            # named by the path (the host's, for /proc/1/ns/mnt).
            if n.type != "user" and (not n.path or n.type == "mount"):
                flags |= ns.NAMESPACES[n.type][0]
        if flags:
            with step("linux.namespaces: unshare"):
                kernel.unshare(flags)
        if linux.time_offsets:
            write_time_offsets(linux.time_offsets)
        pid = fork_after_report(chan)
        if pid == 0:
            init(chan, cfg, fifo_fd, idmapped, kernel)
    except BaseException as e:
        _fail(chan, e)
    os._exit(0)


def write_time_offsets(offsets: tuple[TimeOffset, ...]) -> None:
    """linux.timeOffsets of the time namespace just unshared: the kernel
    takes them only before its first process (our init, forked next) enters."""
    text = "".join(f"{o.clock} {o.secs} {o.nanosecs}\n" for o in offsets)
    with step("linux.timeOffsets: writing /proc/self/timens_offsets"):
        fd = os.open("/proc/self/timens_offsets", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


def fork_after_report(chan: sync.Channel) -> int:
    """fork; the parent reports the child's pid (InitPid) before the child
    may say anything, so the runtime always learns the pid first (the child
    and its parent share the socket: without this gate, a fast child's
    messages could overtake InitPid). A pidfd of the child goes with it,
    opened while the child still waits on the gate: the runtime signals and
    reaps through it, never through a pid that may have been reused."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # EOF too: the parent is gone, _fail reports the rest
        os.close(r)
        return 0
    os.close(r)
    try:
        pidfd = os.pidfd_open(pid)
        try:
            chan.send(sync.InitPid(pid), (pidfd,))
        finally:
            os.close(pidfd)
    finally:
        os.close(w)
    return pid


def join_namespaces(namespaces: tuple[Namespace, ...], kernel: Kernel) -> None:
    """setns into every namespace given by path: user first (it grants the
    rights to join the others), mount last (it changes our root)."""
    order = ["user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount"]
    paths = {n.type: n.path for n in namespaces if n.path}
    for kind in order:
        path = paths.get(kind)
        if not path:
            continue
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            kernel.setns(fd, ns.NAMESPACES[kind][0])
        except OSError as e:
            raise OSError(
                e.errno, f"setns {kind} namespace {path}: {os.strerror(e.errno or 0).lower()}"
            ) from None
        finally:
            os.close(fd)


# ---------------------------------------------------------------- the init


def init(
    chan: sync.Channel,
    cfg: InitConfig,
    fifo_fd: int,
    idmapped: dict[int, int],
    kernel: Kernel,
) -> NoReturn:
    """The container's PID 1 until execve.

    `idmapped`: mounts[] index -> detached id-mapped mount (runtime/idmap.py).

    The order matters for the seccomp filter: everything the runtime itself
    needs (mounts, hooks, ids and capabilities, closing fds, the cwd, the
    wait for `start`) happens first; the filter is the last step before
    execve (process.exec_last), so the container's profile constrains its
    program and never the runtime.
    """
    from portique.runtime import devices, mountplan, rootfs
    from portique.runtime.hooks import run_hook
    from portique.runtime.process import (
        env_dict,
        exec_last,
        find_executable,
        preload_modules,
    )

    spec, proc = cfg.spec, cfg.process
    linux = spec.linux
    try:
        # Our parent (stage 1) exits on purpose: no death signal from it.
        kernel.set_pdeathsig(0)
        os.setsid()
        if cfg.new_keyring:
            join_session_keyring(kernel)
        # The runtime itself may run in one (a rootless engine's): mknod and
        # sysfs are refused there too.
        userns = linux.namespace("user") is not None or ns.in_user_namespace()
        preload_modules(kernel, proc.terminal)
        # Compiled by the parent before fork, loaded last.
        seccomp = cfg.seccomp
        if proc.oom_score_adj is not None:
            write_oom_score_adj(proc.oom_score_adj)
        has_mntns = linux.namespace("mount") is not None
        if has_mntns:
            plan = mountplan.plan_mounts(spec, cfg.bundle, cfg.cgroup, userns, frozenset(idmapped))
            owned = rootfs.apply(plan, kernel, cfg.rootfs, idmapped)
            with step("linux.devices"):
                nodes = devices.plan(spec, userns)
                devices.create_devices(cfg.rootfs, nodes, owned, kernel)
        if spec.hostname:
            with step(f"hostname {spec.hostname}"):
                kernel.sethostname(spec.hostname)
        if spec.domainname:
            with step(f"domainname {spec.domainname}"):
                kernel.setdomainname(spec.domainname)
        chan.send(sync.RunHooks())
        state = chan.expect(sync.HooksDone).state.encode()
        for hook in spec.hooks.create_container:
            run_hook("createContainer", hook, state)
        with step(f"root {cfg.rootfs}"):
            if has_mntns:
                rootfs.pivot(cfg.rootfs, cfg.no_pivot, kernel)
            else:
                kernel.chroot(cfg.rootfs)
                os.chdir("/")
        if has_mntns:
            rootfs.apply(mountplan.plan_finish(spec), kernel, "/")
        keep = {chan.fileno(), fifo_fd}
        finish_process(
            chan, proc, seccomp, keep, cfg.preserve_fds, userns, linux.personality, kernel
        )
        env = env_dict(proc)
        path = find_executable(proc.args[0], env)
        _exit_on_signals()  # before Ready: a kill may follow create at once
        chan.send(sync.Ready())
        # Block until `start` writes to the exec fifo. The fd is O_RDWR, so
        # this never sees EOF, and `start` knows the init is gone when its
        # non-blocking open for writing finds no reader.
        _wait_fifo(fifo_fd)
        os.close(fifo_fd)
        for hook in spec.hooks.start_container:
            run_hook("startContainer", hook, state)
        exec_last(path, proc, env, seccomp, chan.fileno())
    except BaseException as e:
        _fail(chan, e)


def join_session_keyring(kernel: Kernel) -> None:
    """A fresh session keyring, as runc's init joins one: the caller's (a login
    session's, a service's) would otherwise be inherited across execve, and
    a profile that allows keyctl could read the keys in it. Before the
    seccomp filter, which may deny keyctl. A kernel without keyrings
    (ENOSYS) has nothing to inherit either."""
    import errno

    try:
        kernel.join_session_keyring()
    except OSError as e:
        if e.errno != errno.ENOSYS:
            raise OSError(e.errno, f"session keyring: {os_message(e)}") from None


def write_oom_score_adj(value: int) -> None:
    """process.oomScoreAdj; lowering it needs CAP_SYS_RESOURCE, which not
    every host grants (containerd's CRI asks -998 for a pod sandbox)."""
    with step(f"oomScoreAdj {value}: writing /proc/self/oom_score_adj"):
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)


# As PID 1 of its namespace, the waiting init would ignore every signal left
# at SIG_DFL (only SIGKILL/SIGSTOP are forced): `kill` of a created container
# must still end it. execve resets these handlers for the user program.
_EXIT_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def _exit_on_signals() -> None:
    def die(signum: int, _frame: object) -> None:
        os._exit(128 + signum)

    for sig in _EXIT_SIGNALS:
        signal.signal(sig, die)


def _wait_fifo(fd: int) -> None:
    while True:
        try:
            if os.read(fd, 1):
                return
        except InterruptedError:
            continue


def finish_process(
    chan: sync.Channel,
    proc: Process,
    seccomp: Loadable | None,
    keep: set[int],
    preserve_fds: int,
    userns: bool,
    personality: Personality | None,
    kernel: Kernel,
) -> None:
    """Terminal, rlimits, personality, no_new_privs, ids and caps, fds, cwd:
    all but the seccomp filter and the exec (process.exec_last).

    Shared by the init and `exec`. A filter without no_new_privs is loaded
    last too: set_credentials keeps CAP_SYS_ADMIN (which loading it then
    needs) until execve drops it.
    """
    from portique.runtime.process import close_fds, enter_cwd, set_credentials, set_rlimits

    if proc.terminal:
        with step("terminal"):
            setup_terminal(chan, proc, kernel)
    set_rlimits(proc, kernel)
    if personality is not None:
        with step(f"linux.personality {personality.domain}"):
            kernel.set_personality(personality.value)
    if proc.no_new_privileges:
        kernel.set_no_new_privs()
    # In a user namespace whose setgroups is "deny", setgroups(2) is EPERM.
    with step(f"process.user {proc.user.uid}:{proc.user.gid}"):
        set_credentials(
            proc,
            kernel,
            setgroups_allowed=not userns or _setgroups_allowed(),
            keep_sys_admin=seccomp is not None and not proc.no_new_privileges,
        )
    close_fds(keep, preserve_fds)
    enter_cwd(proc.cwd)
    if proc.user.umask is not None:
        os.umask(proc.user.umask)
    else:
        os.umask(0o022)


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "allow"
    except OSError:
        return False


def setup_terminal(chan: sync.Channel, proc: Process, kernel: Kernel) -> None:
    """A pty from the container's devpts; the slave becomes our controlling
    tty and stdio, the master goes to the parent (then the console socket)."""
    master, slave = os.openpty()
    try:
        if proc.console_size:
            kernel.set_winsize(slave, *proc.console_size)
        os.fchown(slave, proc.user.uid, -1)
        kernel.set_controlling_tty(slave)
        for target in (0, 1, 2):
            os.dup2(slave, target, inheritable=True)
        chan.send(sync.Pty(), (master,))
    finally:
        os.close(master)
        os.close(slave)


__all__ = ["InitConfig", "stage1"]
