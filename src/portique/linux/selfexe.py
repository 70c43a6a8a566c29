"""The interpreter we run on, as a container sees it (the CVE-2019-5736 class).

A container's first process is a fork of the Python process that runs the
runtime, so until its execve its /proc/self/exe is the interpreter running
portique. A container whose command is /proc/self/exe (or whose /bin/sh
starts with `#!/proc/self/exe`) runs that interpreter as its PID 1, keeps an
O_PATH fd on it and, once no process executes the file any more (so no
ETXTBSY), reopens it for writing through /proc/self/fd/N: the host's Python,
rewritten from inside. So no process whose /proc/self/exe is a writable host
file may ever execute a container's program. An interpreter is protected
when it is one of:

- read-only: the file sits on a read-only mount (scripts/setup.sh makes the
  venv's interpreter a private copy of Debian's and bind-mounts it read-only
  onto itself). A reopen through /proc goes through that vfsmount and fails
  with EROFS; a container, in a mount namespace of its own, can neither
  remount nor clone a mount of the host's. Free at run time.
- sealed: the process runs from a memfd copy of the interpreter sealed
  against every change (F_SEAL_WRITE, SHRINK, GROW, SEAL), runc 1.0's
  "cloned binary": what a container reaches is a copy nobody can write. It
  costs the copy (~3 ms for Debian's 6.8 MB python3.11), a second interpreter
  start, and the copy's shared memory for as long as a process runs from it
  (the monitor re-executes the same copy through /proc/self/exe: no second
  one).

`ensure_protected()` is what each entry point that can start a container
calls first: nothing when the interpreter is protected already; when it is
setup.sh's copy whose mount is gone (after a reboot) and we are root, the
mount is made again and the process re-executes once; otherwise it
re-executes from a sealed copy, with the same argv (argv[0] stays the path
Python derives sys.prefix and the venv from), environment and open fds.
The runtime checks `protection()` before each fork of a container process,
so an in-process caller on an unprotected interpreter gets an error, never an
escapable container.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys

TYPE_CHECKING = False  # typing itself costs the entry points an import
if TYPE_CHECKING:
    from typing import NoReturn

SELF_EXE = "/proc/self/exe"
SEALED = "sealed"
READ_ONLY = "read-only"

# Next to a protected copy (dir/.NAME + MARKER_SUFFIX): the copy is meant to
# live on a read-only mount, and root may make that mount again.
MARKER_SUFFIX = ".portique-readonly"
# Set (by us) for the one re-exec after making the mount: never twice.
_HEALED_ENV = "PORTIQUE_EXE_REMOUNTED"

_SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
_MFD_EXEC = 0x10  # Linux 6.3+: ask for an executable memfd (vm.memfd_noexec)


def protection(path: str = SELF_EXE) -> str | None:
    """SEALED, READ_ONLY, or None when a process could write the file at `path`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except PermissionError:  # an execute-only file: no seals to read, the mount still counts
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        try:
            seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        except OSError:  # EINVAL: not a memfd; EBADF: an O_PATH fd
            seals = 0
        if seals & _SEALS == _SEALS:
            return SEALED
        if os.fstatvfs(fd).f_flag & os.ST_RDONLY:
            return READ_ONLY
        return None
    finally:
        os.close(fd)


def sealed_copy(path: str = SELF_EXE, name: str = "portique-python") -> int:
    """A close-on-exec memfd holding a copy of `path`, sealed against every change."""
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create(name, flags | _MFD_EXEC)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: a kernel before 6.3, where every memfd can exec
            raise
        fd = os.memfd_create(name, flags)
    try:
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(src).st_size
            done = 0
            while done < size:
                sent = os.sendfile(fd, src, done, size - done)
                if sent == 0:
                    raise OSError(errno.EIO, f"sendfile: {path} shrank while being copied")
                done += sent
        finally:
            os.close(src)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS | fcntl.F_SEAL_SEAL)
    except BaseException:
        os.close(fd)
        raise
    return fd


def exec_sealed(argv: list[str]) -> NoReturn:
    """Re-execute this process from a sealed copy of its interpreter."""
    fd = sealed_copy()
    try:
        os.execve(fd, argv, os.environ)  # execveat(fd, "", AT_EMPTY_PATH): an ELF may be CLOEXEC
    except OSError as e:
        os.close(fd)
        raise OSError(
            e.errno,
            f"cannot run from a sealed copy of the interpreter ({e.strerror}): "
            "install the read-only interpreter with scripts/setup.sh",
        ) from None


def exec_self(argv: list[str]) -> NoReturn:
    """Execute the file this process runs (protected or not, as it is), with `argv`.

    For a process that starts a fresh interpreter of itself (the engine's
    monitor): going through /proc/self/exe keeps the sealed copy or the
    read-only mount, where sys.executable names the writable original.
    """
    os.execv(SELF_EXE, argv)


def is_marked(path: str) -> bool:
    """True when `path` is a copy scripts/setup.sh installed to live read-only.

    Both the file and its marker must belong to root and be writable by no one else.
    """
    head, tail = os.path.split(path)
    try:
        for st in (os.lstat(path), os.lstat(os.path.join(head, f".{tail}{MARKER_SUFFIX}"))):
            if st.st_uid != 0 or st.st_mode & 0o022 or not stat.S_ISREG(st.st_mode):
                return False
    except OSError:
        return False
    return True


def mount_read_only(path: str) -> None:
    """Bind-mount the file `path` read-only onto itself, unless it is read-only there already.

    Serialised by a lock on its directory, so two processes healing at once
    stack no second mount. A failed remount removes the bind again.
    """
    from portique.linux import mount as m

    dirfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(dirfd, fcntl.LOCK_EX)
        flags = os.statvfs(path).f_flag
        if flags & os.ST_RDONLY:
            return
        m.mount(path, path, None, m.MS_BIND)
        # A bind remount sets the per-mount flags to exactly these: keep what the
        # file system was mounted with.
        keep = flags & (m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC | m.MS_NOATIME | m.MS_NODIRATIME)
        try:
            m.mount(None, path, None, m.MS_REMOUNT | m.MS_BIND | m.MS_RDONLY | keep)
        except OSError:
            m.umount(path, m.MNT_DETACH)
            raise
    finally:
        os.close(dirfd)


def ensure_protected(argv: list[str] | None = None) -> None:
    """Return when this interpreter is protected; otherwise re-execute so that it is.

    `argv` (default: sys.orig_argv, the command line the process was started
    with) is what the new image runs. Raises OSError when no protection can
    be had (a memfd that is not sealed, a kernel that refuses to execute a
    memfd).
    """
    remounted = os.environ.pop(_HEALED_ENV, None) is not None
    if protection() is not None:
        return
    argv = list(sys.orig_argv if argv is None else argv)
    exe = os.readlink(SELF_EXE)
    if exe.startswith("/memfd:"):
        raise OSError(errno.EPERM, f"the interpreter runs from {exe}, which is not sealed")
    if not remounted and os.geteuid() == 0 and is_marked(exe):
        try:
            mount_read_only(exe)
        except OSError:
            pass  # no CAP_SYS_ADMIN here, or a mount namespace we cannot change: seal
        else:
            os.environ[_HEALED_ENV] = "1"
            try:
                os.execv(exe, argv)
            except OSError:
                del os.environ[_HEALED_ENV]
    exec_sealed(argv)
