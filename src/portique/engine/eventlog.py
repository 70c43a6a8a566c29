"""The event record: an append-only file of JSON lines under the engine root.

    <root>/events/events.log     the current generation
    <root>/events/events.log.1   the previous one (rotated away at MAX_BYTES)

Daemonless, each process records the events it causes as they happen (the
CLI, a container's monitor, a build). A record is one line, written by one
`write(2)` on a descriptor opened with O_APPEND: the kernel appends it whole
at the file's end whatever other processes append at the same time (a
regular file's writes are serialised on its inode), so concurrent writers
never interleave or overwrite. Records are bounded (MAX_RECORD: a larger one
loses its labels), and so is the record: a writer that finds the file past
MAX_BYTES after its write renames it to `.1` (replacing the older one) under
a flock, checking first that the name still holds the file it wrote, so
concurrent writers rotate once. Two generations of at most ~MAX_BYTES: the
record never holds more than about 2 * MAX_BYTES.

No fsync: an event survives the crash of the process that caused it (the
page cache holds it), not a crash of the machine: the cost on `run` stays a
few microseconds per event. Readers (engine/events.py) read only whole lines.

This module imports only `os`: the monitor records `die` with it before it
loads anything else (`append_line`).
"""

from __future__ import annotations

import os

MAX_BYTES = 4 << 20  # per generation
MAX_RECORD = 64 << 10  # one line, newline included
DIR = "events"
NAME = "events.log"

__all__ = ["DIR", "MAX_BYTES", "MAX_RECORD", "NAME", "append_line", "paths"]


def paths(root: str) -> tuple[str, str]:
    """(current, previous) generation files under engine root `root`."""
    current = os.path.join(root, DIR, NAME)
    return current, current + ".1"


def append_line(root: str, line: bytes, max_bytes: int = MAX_BYTES) -> bool:
    """Append one record (a line ending in a newline) in one write; False when
    it could not be recorded (an event must never fail the operation it tells)."""
    if not line.endswith(b"\n") or len(line) > MAX_RECORD:
        return False
    current, _ = paths(root)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        try:
            fd = os.open(current, flags, 0o600)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(current), mode=0o700, exist_ok=True)
            fd = os.open(current, flags, 0o600)
    except OSError:
        return False
    try:
        written = os.write(fd, line)
        if os.fstat(fd).st_size > max_bytes:
            _rotate(current, fd, max_bytes)
        return written == len(line)
    except OSError:
        return False
    finally:
        os.close(fd)


def _rotate(current: str, fd: int, max_bytes: int) -> None:
    import fcntl

    lock = os.open(
        os.path.join(os.path.dirname(current), "rotate.lock"),
        os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
        0o600,
    )
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        mine = os.fstat(fd)
        try:
            now = os.stat(current, follow_symlinks=False)
        except FileNotFoundError:
            return
        # Another writer rotated it first: the name holds a new file now.
        if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino) and now.st_size > max_bytes:
            os.rename(current, current + ".1")
    finally:
        os.close(lock)


def volume_unmount_line(name: str, cid: str, time_ns: int) -> bytes:
    """A `volume unmount` record without the json module (the monitor's exit path)."""
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or not cid.isalnum():
        raise ValueError(f"not a volume name: {name!r}")
    return (
        f'{{"Type":"volume","Action":"unmount","Actor":{{"ID":"{name}",'
        f'"Attributes":{{"container":"{cid}","driver":"local"}}}},"scope":"local",'
        f'"time":{time_ns // 1_000_000_000},"timeNano":{time_ns}}}\n'
    ).encode()


def container_line(cid: str, action: str, attributes: str, time_ns: int, **extra: str) -> bytes:
    """A container event's record without the json module (the monitor's exit
    path): `attributes` is a JSON object's text (dblite.event_attributes),
    `extra` plain words (exitCode, signal) added to it."""
    inner = attributes.strip()
    if not (inner.startswith("{") and inner.endswith("}")):
        inner = "{}"
    for key, value in extra.items():
        if not (key.isalnum() and value.replace("-", "").isalnum()):
            raise ValueError(f"not a plain attribute: {key}={value}")
        sep = "" if inner == "{}" else ","
        inner = f'{{"{key}":"{value}"{sep}{inner[1:]}'
    return (
        f'{{"Type":"container","Action":"{action}","Actor":{{"ID":"{cid}",'
        f'"Attributes":{inner}}},"scope":"local","time":{time_ns // 1_000_000_000},'
        f'"timeNano":{time_ns}}}\n'
    ).encode()
