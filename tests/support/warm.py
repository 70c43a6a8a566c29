"""Helpers for the warm fork-server's tests (portique/warm) and the warm pass of
scripts/test.sh."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from support.engine_cli import Portique


def server_pids(mark: bytes | None = None) -> list[int]:
    """Warm servers (not their workers, not the monitors they forked: those are
    named pqm-*), optionally only those whose environment holds `mark`."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes()
            comm = Path(f"/proc/{name}/comm").read_text().strip()
            env = Path(f"/proc/{name}/environ").read_bytes() if mark else b""
            ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"\0warm\0start" not in cmd or comm.startswith("pqm-"):
            continue
        try:  # a worker's parent is a server
            parent = Path(f"/proc/{ppid}/cmdline").read_bytes()
        except OSError:
            parent = b""
        if b"\0warm\0start" in parent:
            continue
        if mark is None or mark in env.split(b"\0"):
            out.append(int(name))
    return out


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
    """The live children of `pid` (a server's workers and the monitors' intermediates)."""
    try:
        raw = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in raw.split()]


def workers(server: int) -> list[int]:
    """The server's live children but its monitors' zygote (portique/warm/zygote.py)."""
    from portique.warm.zygote import COMM

    out = []
    for child in children(server):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == COMM:
                continue
        except OSError:
            continue
        out.append(child)
    return out


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
