"""Rootless: an ordinary user's engine, inside a user namespace of its own.

A user's `portique` runs every command inside one user namespace and one
mount namespace per engine, held open by a small "pause" process (podman's
design): the first command of a run root forks it, has the user's ids mapped
(the user to root, then the subordinate range of /etc/subuid and /etc/subgid
from 1 up, through Debian's setuid `newuidmap`/`newgidmap`), and records its
pid and start time in `<runroot>/pause.pid`; every later command joins both
namespaces with setns(2) before it touches any state. Inside, the command is
root of that namespace: the engine, the image store and the runtime library
run unchanged, and the kernel holds them to what the user may do on the host
(files the user does not own stay out of reach, a layer's owners land shifted
into the subordinate range, overlayfs is mounted inside the namespace, which
Linux allows since 5.11). The mounts the engine makes (container roots) live
in the pause process's mount namespace, invisible to the host's.

Without a subordinate range the namespace maps the user alone (a single-id
mapping): images whose files all belong to root work, others fail naming the
line to add to /etc/subuid (`subid_advice`).

State: `$XDG_DATA_HOME/portique` (default ~/.local/share/portique) and
`$XDG_RUNTIME_DIR/portique` (else /tmp/portique-$UID, mode 0700): root's and
a user's engines share nothing. The faces choose them (`default_roots`).

Everything here runs before the engine exists, in a single-threaded process
(setns(CLONE_NEWUSER) refuses a threaded one).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

from portique.errors import PortiqueError

PAUSE_FILE = "pause.pid"
_LOCK_FILE = "pause.lock"
HELPERS = ("newuidmap", "newgidmap")


class RootlessError(PortiqueError):
    """The user's namespace cannot be made or joined."""


def is_rootless() -> bool:
    """True for an ordinary user outside any namespace of ours."""
    return os.geteuid() != 0


def default_roots(env: Mapping[str, str], uid: int) -> tuple[Path, Path]:
    """(root, runroot) of user `uid`'s engine from its environment."""
    data = env.get("XDG_DATA_HOME") or ""
    if not data.startswith("/"):
        home = env.get("HOME") or _home_of(uid)
        data = os.path.join(home, ".local", "share")
    runtime = env.get("XDG_RUNTIME_DIR") or ""
    run = Path(runtime, "portique") if runtime.startswith("/") else Path(f"/tmp/portique-{uid}")
    return Path(data, "portique"), run


def _home_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_dir
    except KeyError:
        raise RootlessError(
            f"uid {uid} has no passwd entry and HOME is unset: pass --root"
        ) from None


def prepare_dir(path: Path) -> None:
    """Make a state directory of the user's, mode 0700; refuse one owned by
    someone else (/tmp/portique-$UID made by another user first)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.stat(path, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise RootlessError(f"{path} is not a directory of uid {os.geteuid()}: remove it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def subid_advice() -> str:
    """The lines a single-id user must add for images owned by other ids."""
    from portique.subids import advice

    return advice()


# -- the engine's namespaces ----------------------------------------------------------


def enter(runroot: Path) -> None:
    """Join the user and mount namespaces of the engine at `runroot`,
    making them (and the pause process) first when nobody holds them."""
    from portique.linux import ns

    prepare_dir(runroot)
    cwd = _cwd()
    lock = os.open(runroot / _LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid = live_pause(runroot)
        if pid is None:
            pid = _spawn_pause(runroot)
        fds = [
            os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            for name in ("user", "mnt")
        ]
    finally:
        os.close(lock)
    try:
        try:
            ns.setns(fds[0], ns.CLONE_NEWUSER)
            ns.setns(fds[1], ns.CLONE_NEWNS)
        except OSError as exc:
            raise RootlessError(
                f"joining the engine's namespaces (pid {pid}): {exc.strerror}"
            ) from None
    finally:
        for fd in fds:
            os.close(fd)
    if cwd is not None:
        try:
            os.chdir(cwd)
        except OSError:
            os.chdir("/")


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None


def live_pause(runroot: Path) -> int | None:
    """The pause process of `runroot` if it still runs (pid and start time)."""
    from portique.linux import proc

    try:
        pid_s, _, start_s = (runroot / PAUSE_FILE).read_text().partition(" ")
        pid, start = int(pid_s), int(start_s)
    except (OSError, ValueError):
        return None
    if pid <= 1 or not proc.is_alive(pid, start):
        return None
    return pid


def stop_pause(runroot: Path) -> int | None:
    """Kill the engine's pause process (`system migrate`); its pid, if one ran."""
    from portique.engine import rootlessnet

    rootlessnet.stop(runroot)
    pid = live_pause(runroot)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    try:
        (runroot / PAUSE_FILE).unlink()
    except FileNotFoundError:
        pass
    return pid


def _spawn_pause(runroot: Path) -> int:
    from portique.fileio import atomic_write
    from portique.linux import proc

    uid, gid = os.geteuid(), os.getegid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    from portique.subids import subid_range

    ranges = (subid_range("/etc/subuid", user, uid), subid_range("/etc/subgid", user, uid))
    to_child_r, to_child_w = os.pipe2(os.O_CLOEXEC)
    from_child_r, from_child_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the pause process
        os.close(to_child_w)
        os.close(from_child_r)
        _pause_child(to_child_r, from_child_w)
    os.close(to_child_r)
    os.close(from_child_w)
    try:
        if os.read(from_child_r, 1) != b"u":
            raise RootlessError("making the user namespace: unshare(CLONE_NEWUSER) failed")
        _map_ids(pid, uid, gid, ranges)
        os.write(to_child_w, b"m")
        reply = os.read(from_child_r, 256)
        if reply != b"r":
            raise RootlessError(f"making the mount namespace: {reply.decode(errors='replace')}")
        start = proc.start_time(pid)
        atomic_write(runroot / PAUSE_FILE, f"{pid} {start}".encode())
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(to_child_w)
        os.close(from_child_r)
    # The pause process reparents to init once we exit; reap nothing here.
    return pid


def _map_ids(
    pid: int, uid: int, gid: int, ranges: tuple[tuple[int, int] | None, tuple[int, int] | None]
) -> None:
    """The user to 0, its subordinate range from 1 (newuidmap/newgidmap);
    the user alone without a range."""
    uids, gids = ranges
    if uids is None or gids is None:
        try:
            with open(f"/proc/{pid}/uid_map", "w", encoding="ascii") as f:
                f.write(f"0 {uid} 1\n")
            with open(f"/proc/{pid}/setgroups", "w", encoding="ascii") as f:
                f.write("deny\n")
            with open(f"/proc/{pid}/gid_map", "w", encoding="ascii") as f:
                f.write(f"0 {gid} 1\n")
        except OSError as exc:
            raise RootlessError(f"writing the single-id map of pid {pid}: {exc.strerror}") from None
        return
    for helper, own, (start, count) in (("newuidmap", uid, uids), ("newgidmap", gid, gids)):
        path = shutil.which(helper, path="/usr/bin:/bin:/usr/sbin:/sbin")
        if path is None:
            raise RootlessError(
                f"{helper} is missing: install Debian's uidmap package (apt-get install uidmap)"
            )
        args = [path, str(pid), "0", str(own), "1", "1", str(start), str(count)]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise RootlessError(f"{helper} {pid}: {why}")


def _pause_child(cmd_r: int, reply_w: int) -> None:  # pragma: no cover - forked
    """The pause process: unshare the user namespace, wait for its maps,
    become root there, unshare a mount namespace, then hold both."""
    from portique.linux import mount, ns

    code = 0
    try:
        os.setsid()
        try:
            ns.unshare(ns.CLONE_NEWUSER)
        except OSError:
            os._exit(1)
        os.write(reply_w, b"u")
        if os.read(cmd_r, 1) != b"m":
            os._exit(1)
        try:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            ns.unshare(ns.CLONE_NEWNS)
            # Host mounts still reach us; ours never reach the host.
            mount.mount(None, "/", None, mount.MS_REC | mount.MS_SLAVE)
        except OSError as exc:
            os.write(reply_w, str(exc).encode()[:200] or b"?")
            os._exit(1)
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.write(reply_w, b"r")
        os.closerange(3, 1 << 16)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        while True:
            signal.pause()
    except BaseException:
        code = 1
    os._exit(code)


def check_ports(host_ports: list[int], lowest: int | None = None) -> None:
    """A host port below net.ipv4.ip_unprivileged_port_start (`lowest`, read
    from /proc by default) is root's."""
    if lowest is None:
        try:
            with open("/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding="ascii") as f:
                lowest = int(f.read().strip())
        except (OSError, ValueError):
            lowest = 1024
    for port in host_ports:
        if 0 < port < lowest:
            raise PortiqueError(
                f"host port {port}: a rootless engine can only publish ports from"
                f" {lowest} up (net.ipv4.ip_unprivileged_port_start = {lowest})"
            )


# HostConfig's cgroup limits and the flags that set them.
LIMIT_FLAGS = (
    ("Memory", "--memory"),
    ("MemoryReservation", "--memory-reservation"),
    ("MemorySwap", "--memory-swap"),
    ("NanoCpus", "--cpus"),
    ("CpuShares", "--cpu-shares"),
    ("CpuQuota", "--cpu-quota"),
    ("CpuPeriod", "--cpu-period"),
    ("CpusetCpus", "--cpuset-cpus"),
    ("CpusetMems", "--cpuset-mems"),
    ("PidsLimit", "--pids-limit"),
    ("BlkioWeight", "--blkio-weight"),
    ("BlkioDeviceReadBps", "--device-read-bps"),
    ("BlkioDeviceWriteBps", "--device-write-bps"),
    ("BlkioDeviceReadIOps", "--device-read-iops"),
    ("BlkioDeviceWriteIOps", "--device-write-iops"),
)


def check_limits(host: Mapping[str, object]) -> None:
    """Limits need a cgroup the user may write (a delegated cgroup v2
    subtree); without one they are refused, never dropped."""
    wanted = [flag for key, flag in LIMIT_FLAGS if host.get(key) not in (None, 0, "", [], -1)]
    if not wanted:
        return
    from portique.runtime.cgroups import delegated_parent, open_manager

    if open_manager(f"{delegated_parent()}/portique/probe", "probe").version != "none":
        return
    raise PortiqueError(
        f"{wanted[0]}: a rootless container cannot have cgroup limits here: this user has"
        " no cgroup of its own (cgroup v1, or no cgroup v2 subtree delegated to it)"
    )


__all__ = [
    "PAUSE_FILE",
    "RootlessError",
    "check_limits",
    "check_ports",
    "default_roots",
    "enter",
    "is_rootless",
    "live_pause",
    "stop_pause",
    "subid_advice",
]
