"""Turning the calling (forked) process into the container's process.

Runs in the child, inside the container's namespaces: rlimits, groups and
ids, the five capability sets, no_new_privs, seccomp, the executable's
lookup in $PATH, the fd clean-up before exec, and exec itself.
"""

from __future__ import annotations

import errno
import os
import resource
import stat
from typing import TYPE_CHECKING, Final, Protocol

from portique.linux import caps as capslib
from portique.linux import prctl
from portique.linux.fs import CLOSE_RANGE_CLOEXEC, close_range
from portique.oci.runtime import Process

if TYPE_CHECKING:
    from portique.oci.seccomp import LinuxSeccomp

DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ExecError(Exception):
    """The executable cannot be run: `error` is "notfound" (127) or "notexec" (126)."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def set_rlimits(process: Process) -> None:
    for rl in process.rlimits:
        kind = getattr(resource, rl.type)
        soft = resource.RLIM_INFINITY if rl.soft >= 2**64 - 1 else rl.soft
        hard = resource.RLIM_INFINITY if rl.hard >= 2**64 - 1 else rl.hard
        try:
            resource.setrlimit(kind, (soft, hard))
        except (ValueError, OSError) as e:
            # Raising a hard limit needs CAP_SYS_RESOURCE, which a host may not grant.
            why = os.strerror(e.errno) if isinstance(e, OSError) and e.errno else str(e)
            raise OSError(
                getattr(e, "errno", errno.EPERM) or errno.EPERM,
                f"setrlimit {rl.type} soft={rl.soft} hard={rl.hard}: {why.lower()}",
            ) from None


def set_credentials(process: Process, *, setgroups_allowed: bool) -> None:
    """Bounding set, ids and groups, then the other four capability sets.

    Order matters: the bounding set is dropped while CAP_SETPCAP is still
    effective; KEEPCAPS keeps the permitted set across setresuid; capset then
    sets effective/permitted/inheritable; ambient needs inheritable first.
    """
    c = process.capabilities
    bounding = capslib.to_mask(c.bounding) if c else 0
    capslib.drop_bounding(bounding)
    prctl.set_keepcaps(True)
    user = process.user
    if setgroups_allowed:
        os.setgroups(list(user.additional_gids))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    prctl.set_keepcaps(False)
    capslib.capset(
        capslib.to_mask(c.effective) if c else 0,
        capslib.to_mask(c.permitted) if c else 0,
        capslib.to_mask(c.inheritable) if c else 0,
    )
    if c and c.ambient:
        capslib.set_ambient(capslib.to_mask(c.ambient))
    else:
        prctl.ambient_clear_all()


class Loadable(Protocol):
    def load(self) -> None: ...


def build_seccomp(spec: LinuxSeccomp | None) -> Loadable | None:
    """Compile the filter while the host's libraries are still reachable
    (before pivot_root or setns into the mount namespace)."""
    if spec is None:
        return None
    from portique.runtime.seccomp import build_filter

    return build_filter(spec)


def preload_modules(terminal: bool) -> None:
    """Import now what the child needs after it leaves the host's root:
    the container has no Python standard library."""
    if terminal:
        import fcntl  # noqa: F401
        import struct  # noqa: F401
        import termios  # noqa: F401


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
        raise ExecError("notexec", f'exec: "{arg0}": {path} is a directory')
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
            os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, 2**31 - 1)
    close_range(low, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)


def enter_cwd(cwd: str) -> None:
    """chdir and check the result is inside the container's root."""
    os.chdir(cwd)
    try:
        os.getcwd()
    except FileNotFoundError:
        raise OSError(errno.ENOENT, f"cwd {cwd} is outside the container") from None


def execute(path: str, process: Process, env: dict[str, str]) -> None:
    """execve; raises ExecError classified by errno when it fails."""
    try:
        os.execve(path, list(process.args), env)
    except OSError as e:
        kind = "notfound" if e.errno == errno.ENOENT else "notexec"
        raise ExecError(
            kind, f'exec: "{process.args[0]}": {os.strerror(e.errno or 0).lower()}'
        ) from None
