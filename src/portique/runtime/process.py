"""Turning the calling (forked) process into the container's process.

Runs in the child, inside the container's namespaces: rlimits, groups and
ids, the five capability sets, no_new_privs, the executable's lookup in
$PATH, the fd clean-up before exec, and last the seccomp filter and exec
itself (`exec_last`).
"""

from __future__ import annotations

import errno
import os
import resource
import stat

from portique.linux.caps import CAP_NUMBERS, to_mask
from portique.linux.fs import CLOSE_RANGE_CLOEXEC, close_range
from portique.oci.runtime import Process

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    import signal
    from typing import Final, NoReturn, Protocol

    from _typeshed import StrPath

    from portique.linux.kernel import Kernel
    from portique.oci.seccomp import LinuxSeccomp
else:
    import _signal as signal  # the numbers and calls, without signal's enum wrappers

    Protocol = object  # a plain base at run time: importing typing costs every call

DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ExecError(Exception):
    """The executable cannot be run: `error` is "notfound" (127) or "notexec" (126)."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def set_rlimits(process: Process, kernel: Kernel) -> None:
    for rl in process.rlimits:
        kind = getattr(resource, rl.type)
        soft = resource.RLIM_INFINITY if rl.soft >= 2**64 - 1 else rl.soft
        hard = resource.RLIM_INFINITY if rl.hard >= 2**64 - 1 else rl.hard
        try:
            kernel.setrlimit(kind, soft, hard)
        except (ValueError, OSError) as e:
            # Raising a hard limit needs CAP_SYS_RESOURCE, which a host may not grant.
            why = os.strerror(e.errno) if isinstance(e, OSError) and e.errno else str(e)
            raise OSError(
                getattr(e, "errno", errno.EPERM) or errno.EPERM,
                f"setrlimit {rl.type} soft={rl.soft} hard={rl.hard}: {why.lower()}",
            ) from None


def set_credentials(
    process: Process, kernel: Kernel, *, setgroups_allowed: bool, keep_sys_admin: bool = False
) -> None:
    """Bounding set, ids and groups, then the other four capability sets.

    Order matters: the bounding set is dropped while CAP_SETPCAP is still
    effective; KEEPCAPS keeps the permitted set across setresuid; capset then
    sets effective/permitted/inheritable; ambient needs inheritable first.

    `keep_sys_admin`: leave CAP_SYS_ADMIN effective and permitted (when we
    hold it) on top of the process's own sets, so that a seccomp filter can
    still be loaded without no_new_privs as the very last step before execve
    (seccomp(2) wants no_new_privs or CAP_SYS_ADMIN). It never reaches the
    user program: execve recomputes the permitted and effective sets from
    the bounding, inheritable and ambient sets and the file's capabilities
    alone (capabilities(7), "Transformation of capabilities during execve").
    """
    c = process.capabilities
    kernel.drop_bounding(to_mask(c.bounding) if c else 0)
    kernel.set_keepcaps(True)
    user = process.user
    if setgroups_allowed:
        kernel.setgroups(list(user.additional_gids))
    kernel.setresgid(user.gid, user.gid, user.gid)
    kernel.setresuid(user.uid, user.uid, user.uid)
    kernel.set_keepcaps(False)
    extra = 0
    if keep_sys_admin:
        extra = kernel.capget()[1] & (1 << CAP_NUMBERS["CAP_SYS_ADMIN"])
    kernel.capset(
        (to_mask(c.effective) if c else 0) | extra,
        (to_mask(c.permitted) if c else 0) | extra,
        to_mask(c.inheritable) if c else 0,
    )
    if c and c.ambient:
        kernel.set_ambient(to_mask(c.ambient))
    else:
        kernel.clear_ambient()


class Loadable(Protocol):
    def load(self) -> None: ...


def build_seccomp(spec: LinuxSeccomp | None, cache_dir: StrPath | None = None) -> Loadable | None:
    """Compile the filter while the host's libraries are still reachable
    (before fork, pivot_root or setns into the mount namespace); from the
    compiled-filter cache in `cache_dir` when it holds this profile
    (runtime/seccomp_cache.py)."""
    if spec is None:
        return None
    from portique.runtime.seccomp_cache import compiled

    return compiled(spec, cache_dir)


def preload_modules(kernel: Kernel, terminal: bool) -> None:
    """Import now what the child needs after it leaves the host's root:
    the container has no Python standard library."""
    kernel.preload(terminal=terminal)


def env_dict(process: Process) -> dict[str, str]:
    env: dict[str, str] = {}
    for kv in process.env:
        k, _, v = kv.partition("=")
        env[k] = v
    return env


def find_executable(arg0: str, env: dict[str, str]) -> str:
    """The path execve will run, looked up in the container's $PATH like execvp.

    Raises ExecError("notfound") when nothing matches, ("notexec") when the
    only matches cannot be executed (a directory, no x bit).
    """
    if "/" in arg0:
        return _check_candidate(arg0, arg0)
    denied: str | None = None
    for d in env.get("PATH", DEFAULT_PATH).split(":"):
        cand = os.path.join(d or ".", arg0)
        try:
            return _check_candidate(cand, arg0)
        except ExecError as e:
            if e.error == "notexec" and denied is None:
                denied = e.message
    if denied is not None:
        raise ExecError("notexec", denied)
    raise ExecError("notfound", f'exec: "{arg0}": executable file not found in $PATH')


def _check_candidate(path: str, arg0: str) -> str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ExecError(
            "notfound", f'exec: "{arg0}": stat {path}: no such file or directory'
        ) from None
    except NotADirectoryError:
        raise ExecError("notfound", f'exec: "{arg0}": stat {path}: not a directory') from None
    except PermissionError:
        raise ExecError("notexec", f'exec: "{arg0}": stat {path}: permission denied') from None
    if stat.S_ISDIR(st.st_mode):
        # "permission denied" as runc (Go's LookPath) words it: dockerd and
        # podman read that text to answer 126.
        raise ExecError("notexec", f'exec: "{arg0}": {path} is a directory: permission denied')
    if not os.access(path, os.X_OK):
        raise ExecError("notexec", f'exec: "{arg0}": {path}: permission denied')
    return path


def close_fds(keep: set[int], preserve_fds: int) -> None:
    """Close every fd above 2 except `keep` and the preserved 3..3+n-1; then
    mark whatever is left (the sync socket, the fifo) close-on-exec
    (CVE-2024-21626 class: no runtime fd reaches the container)."""
    low = 3 + preserve_fds
    for fd in range(3, low):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    start = low
    for fd in sorted(k for k in keep if k >= low):
        if fd > start:
            _close_range(start, fd - 1)
        start = fd + 1
    _close_range(start, _MAX_FD)
    try:
        close_range(low, _MAX_FD, CLOSE_RANGE_CLOEXEC)
    except OSError:  # CLOSE_RANGE_CLOEXEC needs Linux 5.11
        for fd in _open_fds(low, _MAX_FD):
            os.set_inheritable(fd, False)


_MAX_FD: Final = 0xFFFFFFFF


def _close_range(first: int, last: int) -> None:
    # Not os.closerange: when close_range(2) fails, CPython falls back to
    # one close(2) per number up to `last`, about two billion calls for an
    # open-ended range (minutes of CPU).
    try:
        close_range(first, last)
    except OSError:
        for fd in _open_fds(first, last):
            try:
                os.close(fd)
            except OSError:
                pass


def _open_fds(first: int, last: int) -> list[int]:
    """The open fds in [first, last]: from /proc/self/fd, or up to RLIMIT_NOFILE."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        fds = list(range(first, min(last, soft if soft >= 0 else 1 << 20) + 1))
    return [fd for fd in fds if first <= fd <= last]


def enter_cwd(cwd: str) -> None:
    """chdir and check the result is inside the container's root."""
    try:
        os.chdir(cwd)
    except OSError as e:
        raise OSError(e.errno, f"cwd {cwd}: chdir: {e.strerror}") from None
    try:
        os.getcwd()
    except FileNotFoundError:
        raise OSError(errno.ENOENT, f"cwd {cwd} is outside the container") from None


def reset_signals() -> None:
    """Hand the program default signal dispositions and an empty mask.

    execve resets handled signals but keeps ignored ones and the mask: the
    interpreter ignores SIGPIPE and SIGXFSZ, and a runtime started in the
    background by a shell has SIGINT and SIGQUIT ignored, none of which the
    container's program asked for (`yes | head` would spin on EPIPE).
    """
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(sig) is signal.SIG_IGN:
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            continue  # realtime signals glibc keeps for itself
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


# execve(2)'s documented errors, worded before the filter is loaded: after
# it, the failure report is built from memory alone.
_EXEC_ERRNOS: Final = (
    errno.E2BIG,
    errno.EACCES,
    errno.EAGAIN,
    errno.EFAULT,
    errno.EINVAL,
    errno.EIO,
    errno.EISDIR,
    errno.ELIBBAD,
    errno.ELOOP,
    errno.EMFILE,
    errno.ENAMETOOLONG,
    errno.ENFILE,
    errno.ENOENT,
    errno.ENOEXEC,
    errno.ENOMEM,
    errno.ENOTDIR,
    errno.EPERM,
    errno.ETXTBSY,
)


def exec_last(
    path: str,
    process: Process,
    env: dict[str, str],
    seccomp: Loadable | None,
    report_fd: int,
) -> NoReturn:
    """Load the seccomp filter, then execve(2): nothing else comes after the filter.

    The container's profile decides which syscalls its program may make, not
    which ones the runtime needs: an allow-list without close_range, getcwd,
    fcntl or prctl is common (runtime-tools' default, hand-written
    profiles). So every step of the runtime happens before the filter, and
    after it only execve, and on its failure a write(2) of the report to
    `report_fd` (the sync socket, fd 2 when nobody listens) and exit_group.
    Garbage collection is off from here: a collected socket or file would
    close(2) its fd behind our back.
    """
    import gc

    from portique.runtime.sync import Failed, encode

    argv = list(process.args)
    words = {e: os.strerror(e).lower() for e in _EXEC_ERRNOS}
    reset_signals()
    gc.disable()
    if seccomp is not None:
        seccomp.load()  # an error here leaves no filter behind: the caller reports it
    err = 0
    try:
        os.execve(path, argv, env)
    except OSError as e:
        err = e.errno or 0
    kind = "notfound" if err == errno.ENOENT else "notexec"
    text = f'exec: "{argv[0]}": {words.get(err, f"errno {err}")}'
    try:
        # SIGPIPE is back to its default: should nobody listen any more (a
        # `create` long returned), this ends the process by that signal.
        os.write(report_fd, encode(Failed(kind, text)))
    except OSError:
        try:
            os.write(2, f"portique-runtime: {text}\n".encode())
        except OSError:
            pass
    os._exit(127 if kind == "notfound" else 126)
