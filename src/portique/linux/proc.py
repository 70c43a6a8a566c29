"""/proc/<pid>/stat, the one parser of it: a process's state and start time
(for "is this still our init, our monitor, our DNS server?": pids are reused,
the pair pid + start time is not); and read_all, the bare read of a small
pseudo file (/proc, cgroupfs) that the runtime's start path makes often."""

from __future__ import annotations

import os


def read_all(path: str) -> bytes:
    """The whole file by os.open and os.read: a buffered file object costs an
    fstat, an ioctl (TCGETS) and lseeks more per file, and /proc and cgroupfs
    files are small and read once."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


class Stat:
    """The fields of /proc/<pid>/stat that portique uses (proc(5))."""

    __slots__ = ("ppid", "start_time", "state")

    def __init__(self, state: str, ppid: int, start_time: int) -> None:
        self.state = state  # field 3: R, S, D, Z (zombie), X (dead), ...
        self.ppid = ppid  # field 4
        self.start_time = start_time  # field 22: clock ticks after boot

    @property
    def is_alive(self) -> bool:
        """Neither a zombie nor dead: the process still runs (or sleeps)."""
        return self.state not in ("Z", "X")


def parse_stat(raw: bytes) -> Stat:
    """Parse the text of /proc/<pid>/stat.

    The command name (field 2) may hold spaces and parentheses, so the fields
    are split after the last ')'; index 0 of what follows is field 3.
    """
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return Stat(fields[0].decode(), int(fields[1]), int(fields[19]))
    except (IndexError, ValueError, UnicodeDecodeError):
        raise ValueError(f"malformed /proc/<pid>/stat: {raw[:200]!r}") from None


def read_stat(pid: int, proc: str = "/proc") -> Stat | None:
    """/proc/<pid>/stat parsed, or None if there is no such process."""
    try:
        raw = read_all(f"{proc}/{pid}/stat")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return parse_stat(raw)


def start_time(pid: int, proc: str = "/proc") -> int | None:
    """Field 22 (starttime, in clock ticks since boot), or None if the process is gone."""
    stat = read_stat(pid, proc)
    return stat.start_time if stat else None


def is_alive(pid: int, expected_start: int | None = None, proc: str = "/proc") -> bool:
    """True if `pid` exists, is not a zombie, and (if given) started at `expected_start`."""
    stat = read_stat(pid, proc)
    if stat is None or not stat.is_alive:
        return False
    return expected_start is None or stat.start_time == expected_start
