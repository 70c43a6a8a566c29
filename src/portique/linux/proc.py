"""Reading /proc: a process's start time and state (for "is this still our init?")."""

from __future__ import annotations


def stat_fields(pid: int, proc: str = "/proc") -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, or None if gone.

    The command name (field 2) may hold spaces and parentheses, so split after
    the last ')'. Index 0 of the result is field 3 (state).
    """
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = raw[raw.rfind(b")") + 2 :]
    return rest.decode().split()


def start_time(pid: int, proc: str = "/proc") -> int | None:
    """Field 22 (starttime, in clock ticks since boot), or None if the process is gone."""
    fields = stat_fields(pid, proc)
    return int(fields[19]) if fields else None


def is_alive(pid: int, expected_start: int | None = None, proc: str = "/proc") -> bool:
    """True if `pid` exists, is not a zombie, and (if given) started at `expected_start`."""
    fields = stat_fields(pid, proc)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return expected_start is None or int(fields[19]) == expected_start
