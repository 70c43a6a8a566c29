"""Helpers for the warm fork-server's tests (portique/warm) and the warm pass of
scripts/test.sh."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from support.engine_cli import Portique


def holders(
    opens: Callable[[str], bool], this: Callable[[str], bool] = lambda _pid: True
) -> list[int]:
    """Processes with an fd whose target `opens` accepts, among those `this`
    accepts (given the pid as text)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if not this(name):
                continue
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if opens(os.readlink(f"/proc/{name}/fd/{fd}")):
                    out.append(int(name))
                    break
            except OSError:
                continue
    return out


def server_pids(mark: bytes | None = None) -> list[int]:
    """Warm servers: the processes holding a run root's warm.lock open (workers,
    the zygote and monitors close it), optionally only those whose environment
    holds `mark`. (A server started on demand has its client's command line.)"""

    def marked(pid: str) -> bool:
        return mark is None or mark in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")

    return holders(lambda target: target.endswith("/warm.lock"), marked)


def stop_marked_servers(mark: bytes, timeout: float = 30.0) -> None:
    """SIGTERM the warm servers this test session started, and wait for them."""
    fds = []
    for pid in server_pids(mark):
        with contextlib.suppress(OSError):
            fd = os.pidfd_open(pid)
            signal.pidfd_send_signal(fd, signal.SIGTERM)
            fds.append(fd)
    deadline = time.monotonic() + timeout
    for fd in fds:
        p = select.poll()
        p.register(fd, select.POLLIN)
        p.poll(max(0, int((deadline - time.monotonic()) * 1000)))
        os.close(fd)


def children(pid: int) -> list[int]:
    """The children of `pid`, zombies included (a server's workers, its spare, the
    monitors' zygote and intermediates), from each process's parent in /proc: the
    kernel's /proc/PID/task/TID/children may omit live children while others exit
    (proc(5)), as a server's workers do."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(name))
    return sorted(out)


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "(gone)"


def describe(pids: list[int]) -> str:
    """Each process's pid, comm, state and command line: what a failed count shows."""
    lines = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            state, argv = "?", "(gone)"
        lines.append(f"{pid} {comm(pid)} {state} {argv.strip()}")
    return "\n".join(lines)


def workers(server: int) -> list[int]:
    """The server's children but its monitors' zygote (portique/warm/zygote.py) and
    its spare, the worker forked ahead of the next command (portique/warm/worker.py)."""
    from portique.warm.worker import SPARE_COMM
    from portique.warm.zygote import COMM

    idle = {COMM, SPARE_COMM.decode()}
    return [child for child in children(server) if comm(child) not in idle]


def spares(runroot: Path) -> list[int]:
    """The spare workers (portique/warm/worker.py) of the servers of `runroot`,
    whoever their parent is now (a spare outliving its server would be a leak)."""
    from portique.warm.worker import SPARE_COMM

    mark = f"PORTIQUE_RUNROOT={runroot}".encode()

    def spare(pid: str) -> bool:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        return comm(int(pid)) == SPARE_COMM.decode() and mark in environ

    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _quietly(spare, pid)]


def _quietly(fact: Callable[[str], bool], pid: str) -> bool:
    try:
        return fact(pid)
    except OSError:
        return False  # gone meanwhile


def zombies_of(pid: int) -> list[int]:
    out = []
    for child in children(pid):
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "Z":
            out.append(child)
    return out


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@dataclass
class Modes:
    warm: Portique
    cold: Portique

    @property
    def runroot(self) -> Path:
        return self.warm.run_root

    def start(self) -> None:
        self.cold.ok("warm", "start")

    def stop(self) -> None:
        self.cold.ok("warm", "stop")

    def server_pid(self) -> int | None:
        out = self.cold("warm", "status")
        if out.returncode != 0:
            return None
        return int(out.stdout.split("pid ")[1].split(",")[0])
