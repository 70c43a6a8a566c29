"""Third-party daemons the compat tests start, and removing what they leave.

dockerd, containerd and podman's conmon leave mounts (overlay roots, netns
bind mounts, shm tmpfs), cgroups and interfaces behind when a test fails
half way. The fixtures stop the daemon they started (by its pid, never by
name) and then remove, whatever happened: every mount under the test's own
directory, the cgroup tree under the test's own `portique/...` parent in
every hierarchy (after killing what still runs in it: only the test's
containers can), and the interfaces the test named.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

CGROUP_ROOT = Path("/sys/fs/cgroup")


class Daemon:
    """A daemon process in its own session, its output in a log file."""

    def __init__(
        self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.log_path = log
        self._log: IO[bytes] = open(log, "ab")  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def log_tail(self, size: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError as exc:
            return f"({self.log_path}: {exc.strerror})"
        return data[-size:].decode(errors="replace")

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
        """Poll `ready` until it holds; fail with the log if the daemon died or
        the deadline passed."""
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited ({self.proc.returncode}) before {what}:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: not {what} after {timeout:.0f} s:\n" + self.log_tail()
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then SIGKILL after `timeout`; idempotent."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def kill_pidfile(path: Path, timeout: float = 10) -> None:
    """Kill the process a pid file names (a daemon's own child, such as the
    containerd dockerd starts), if it still runs."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)


def kill_strays(base: Path, task_dirs: tuple[Path, ...] = (), grace: float = 5) -> list[int]:
    """Processes whose command line names `base` (the test's own directory: a
    containerd shim, conmon, podman's cleanup command), other than this
    process and its ancestors, get `grace` seconds to exit on their own, then
    SIGKILL; the sockets of the shims of containerd's `task_dirs`
    (STATE/io.containerd.runtime.v2.task/NS), which a shim removes itself
    only on a clean exit, are removed. Returns the pids that had to be killed."""
    keep, pid = set(), os.getpid()
    while pid > 1:
        keep.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    needle = str(base).encode()

    def strays() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in keep:
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmdline:
                found.append(int(entry.name))
        return found

    deadline = time.monotonic() + grace
    while (left := strays()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # containerd's shims listen on /run/containerd/s/<hash>, recorded in each
    # task's `address` file.
    for address in (a for d in task_dirs for a in d.glob("*/address")):
        with contextlib.suppress(OSError, ValueError):
            sock = Path(address.read_text().strip().removeprefix("unix://"))
            if sock.parent == Path("/run/containerd/s"):
                sock.unlink(missing_ok=True)
    return left


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(base: Path) -> list[str]:
    """Mount points at or below `base`, in mount order."""
    prefix = str(base).rstrip("/")
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _unescape(line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return points


def unmount_under(base: Path) -> list[str]:
    """Unmount everything at or below `base`, newest first; returns what
    stays mounted (normally nothing)."""
    for _ in range(3):
        points = mounts_under(base)
        if not points:
            return []
        for point in reversed(points):
            subprocess.run(["umount", point], capture_output=True, check=False)
    for point in reversed(mounts_under(base)):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return mounts_under(base)


def cgroup_hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, named ones, cgroup2)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] in ("cgroup", "cgroup2"):
                out.append(Path(_unescape(pre.split()[4])))
    return out


def remove_cgroup_tree(parent: str) -> list[str]:
    """Remove the cgroup `parent` (such as "portique/compat-dockerd-123") and
    everything below it in every hierarchy, killing what still runs there
    first; returns the directories that could not be removed."""
    assert parent.strip("/").startswith("portique/"), parent
    left = []
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / parent.strip("/")
        if not top.is_dir():
            continue
        dirs = sorted((d for d, _, _ in os.walk(top)), key=len, reverse=True)
        for d in dirs:
            with contextlib.suppress(OSError):
                for pid in Path(d, "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
        for d in dirs:
            deadline = time.monotonic() + 10
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    # EBUSY while the killed processes are being reaped.
                    if time.monotonic() > deadline:
                        left.append(d)
                        break
                    time.sleep(0.05)
    return left


def cgroup_dirs(parent: str) -> list[str]:
    """The directories of `parent` that exist, in any hierarchy."""
    return [
        str(h / parent.strip("/")) for h in cgroup_hierarchies() if (h / parent.strip("/")).is_dir()
    ]


def unmounted_v1_controllers() -> list[str]:
    """v1 hierarchies this process belongs to that are mounted nowhere: what
    ../shared/peers/cgfix.sh `off` leaves (hugetlb) until the kernel frees the
    hierarchy; containerd's shim cannot load a container's cgroups meanwhile."""
    mounted: set[str] = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            post = line.partition(" - ")[2].split()
            if post and post[0] == "cgroup":
                mounted.update(post[2].split(","))
    hidden = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, _ = line.split(":", 2)
        if number != "0" and not set(controllers.split(",")) <= mounted:
            hidden.append(controllers)
    return hidden


def memory_limit_file(cgroup: str) -> Path:
    """The file holding the memory limit of `cgroup` (a path under the
    hierarchies' roots): memory.limit_in_bytes on v1, memory.max on v2."""
    v1 = CGROUP_ROOT / "memory" / cgroup.strip("/") / "memory.limit_in_bytes"
    return v1 if v1.exists() else CGROUP_ROOT / cgroup.strip("/") / "memory.max"


def delete_link(name: str) -> None:
    subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()
