"""Docker's json-file log: one JSON object per line, {"log", "stream", "time"}.

The writer (logfile.py) runs inside the monitor and stays tiny; this module
is the reader behind `portique logs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portique.engine.logfile import LogWriter, rfc3339_nano

if TYPE_CHECKING:
    from portique.engine.engine import Engine

__all__ = [
    "LogRecord",
    "LogWriter",
    "container_logs",
    "follow_file",
    "parse_since",
    "read_records",
    "rfc3339_nano",
    "tail_records",
]


# -------------------------------------------------------------------- reader


@dataclass(frozen=True, slots=True)
class LogRecord:
    stream: str
    time: str
    log: str

    @property
    def time_ns(self) -> int:
        return parse_rfc3339(self.time)


def parse_rfc3339(value: str) -> int:
    """RFC 3339 (Z or offset, up to nanoseconds) -> unix nanoseconds."""
    import calendar

    main, frac, tz = value, "", "Z"
    if value.endswith("Z"):
        main = value[:-1]
    elif len(value) > 6 and value[-6] in "+-" and value[-3] == ":":
        main, tz = value[:-6], value[-6:]
    if "." in main:
        main, frac = main.split(".", 1)
    t = time.strptime(main, "%Y-%m-%dT%H:%M:%S")
    secs = calendar.timegm(t)
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        secs -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return secs * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def parse_since(value: str, now: float | None = None) -> int:
    """--since: a unix timestamp, an RFC 3339 time, or a duration (10m, 1h30m)."""
    from portique.errors import InvalidArgument

    now = time.time() if now is None else now
    v = value.strip()
    try:
        return int(float(v) * 1e9)
    except ValueError:
        pass
    from portique.duration import InvalidDuration, parse_seconds

    try:
        return int((now - parse_seconds(v)) * 1e9)
    except InvalidDuration:
        pass
    try:
        return parse_rfc3339(v if "T" in v else v + "T00:00:00Z")
    except ValueError:
        raise InvalidArgument(f"invalid value for --since: {value!r}") from None


def read_records(path: str) -> Iterator[LogRecord]:
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return
    with f:
        for line in f:
            rec = parse_line(line)
            if rec is not None:
                yield rec


def parse_line(line: bytes) -> LogRecord | None:
    import json

    try:
        obj = json.loads(line)
    except ValueError:
        return None  # a torn last line while the monitor writes
    if not isinstance(obj, dict):
        return None
    return LogRecord(
        str(obj.get("stream", "stdout")), str(obj.get("time", "")), str(obj.get("log", ""))
    )


def tail_records(path: str, n: int, end: int | None = None) -> list[LogRecord]:
    """The last `n` records (all when n < 0), reading the file from its end
    (or from byte `end`: what a follow then reads from): `logs --tail 10` of
    a large log touches only its last blocks."""
    if n < 0 and end is None:
        return list(read_records(path))
    if n == 0:
        return []
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return []
    with f:
        pos = f.seek(0, 2) if end is None else end
        if n < 0:
            f.seek(0)
            data = f.read(pos)
            return [r for r in (parse_line(ln) for ln in data.split(b"\n") if ln) if r]
        buf = b""
        # n + 2 newlines: enough whole lines even when the last one is torn.
        while pos > 0 and buf.count(b"\n") < n + 2:
            step = min(1 << 16, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
    lines = buf.split(b"\n")
    if pos > 0:
        lines = lines[1:]  # the first piece may start mid-line
    records = [r for r in (parse_line(line) for line in lines if line) if r is not None]
    return records[-n:]


def rotated_files(path: str) -> list[str]:
    """The log's files, oldest first: PATH.N ... PATH.1 (--log-opt max-file), PATH."""
    import os

    older = []
    i = 1
    while os.path.exists(f"{path}.{i}") and i < 1000:
        older.append(f"{path}.{i}")
        i += 1
    return [*reversed(older), path]


def rotated_tail(
    path: str, n: int, current: str | None = None, end: int | None = None
) -> list[LogRecord]:
    """tail_records over the rotated files: the newest file first (`current`,
    a held fd's /proc path, up to byte `end`, when given), older ones only
    while more records are wanted."""
    files = rotated_files(path)
    out = tail_records(current or path, n, end)
    for f in reversed(files[:-1]):
        if n >= 0 and len(out) >= n:
            break
        out = tail_records(f, n - len(out) if n >= 0 else -1) + out
    return out


def follow_file(
    path: str,
    offset: int,
    still_running: Callable[[], bool],
    poll: float = 0.1,
    name: str | None = None,
) -> Iterator[LogRecord]:
    """Records appended after byte `offset` until `still_running()` is false and the
    file is drained; when the monitor rotates the file (`name`, by default
    `path`, names another file), the new one is followed."""
    import os

    pending = b""
    f = open(path, "rb")  # noqa: SIM115
    try:
        f.seek(offset)
        while True:
            chunk = f.read(1 << 16)
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    rec = parse_line(line)
                    if rec is not None:
                        yield rec
                continue
            try:
                rotated = os.stat(name or path).st_ino != os.fstat(f.fileno()).st_ino
            except OSError:
                rotated = False
            if rotated:
                f.close()
                f = open(name or path, "rb")  # noqa: SIM115
                pending = b""
                continue
            if not still_running():
                # One more read: the monitor may have flushed right before exiting.
                rest = pending + f.read()
                for line in rest.split(b"\n"):
                    rec = parse_line(line) if line else None
                    if rec is not None:
                        yield rec
                return
            time.sleep(poll)
    finally:
        f.close()


def container_logs(
    eng: Engine,
    ref: str,
    *,
    follow: bool = False,
    tail: int = -1,
    since_ns: int = 0,
    until_ns: int = 0,
    reader_alive: Callable[[], bool] | None = None,
) -> Iterator[LogRecord]:
    """`GET /containers/{id}/logs`: the container's records, the last `tail` of
    them (all when negative), those in [since, until] (unix ns, 0 for no
    bound), then with `follow` what it writes until it stops (or until
    `reader_alive()` says the reader went away: an API client). The faces write
    them (the CLI to its stdout and stderr, the API in Docker's framing).

    The container is looked up and its log opened by this call, not at the
    first record: a client may read the records after the container is gone
    (docker-py's run reads them after its wait and remove)."""
    import os

    from portique.engine import containers

    row = containers.get(eng, ref)
    log_config = row.config["HostConfig"].get("LogConfig") or {}
    if isinstance(log_config, dict) and log_config.get("Type") == "none":
        from portique.errors import Unsupported

        raise Unsupported("configured logging driver does not support reading")
    path = str(eng.paths(row.id).log)
    try:
        # Made here if the monitor has not made it yet (with its flags and
        # mode: it appends to the same file).
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640))
        held = open(path, "rb")  # noqa: SIM115 - closed by the records' generator
    except OSError:
        held = None
    path = f"/proc/self/fd/{held.fileno()}" if held is not None else path
    offset = _whole_lines_end(held) if held is not None else 0
    return _records(eng, row, path, held, offset, follow, tail, since_ns, until_ns, reader_alive)


def _whole_lines_end(f: Any) -> int:
    """The offset after the last complete line: the tail reads before it, a
    follow from it (a line the monitor is still writing belongs to the follow)."""
    import os

    size = os.fstat(f.fileno()).st_size
    pos = size
    for _ in range(1 << 20):
        if pos <= 0:
            return 0
        step = min(1 << 16, pos)
        chunk = os.pread(f.fileno(), step, pos - step)
        at = chunk.rfind(b"\n")
        if at >= 0:
            return pos - step + at + 1
        pos -= step
    return 0


def _records(
    eng: Engine,
    row: Any,
    path: str,
    held: Any,
    offset: int,
    follow: bool,
    tail: int,
    since_ns: int,
    until_ns: int,
    reader_alive: Callable[[], bool] | None,
) -> Iterator[LogRecord]:
    try:
        yield from _records_of(
            eng, row, path, offset, follow, tail, since_ns, until_ns, reader_alive
        )
    finally:
        if held is not None:
            held.close()


def _records_of(
    eng: Engine,
    row: Any,
    path: str,
    offset: int,
    follow: bool,
    tail: int,
    since_ns: int,
    until_ns: int,
    reader_alive: Callable[[], bool] | None,
) -> Iterator[LogRecord]:
    from portique.engine import containers, db
    from portique.engine.state import has_monitor

    def wanted(rec: LogRecord) -> bool:
        if since_ns or until_ns:
            t = rec.time_ns
            return not (since_ns and t < since_ns) and not (until_ns and t > until_ns)
        return True

    real = str(eng.paths(row.id).log)
    yield from (rec for rec in rotated_tail(real, tail, path, offset) if wanted(rec))
    if follow:

        def running() -> bool:
            if reader_alive is not None and not reader_alive():
                return False
            cur = db.get_container(eng.db, row.id)
            if cur is not None and has_monitor(containers.refresh(eng, cur).status):
                return True
            # Exited, but its monitor may still be writing the last output.
            from portique.engine.lifecycle import is_alive

            return any(
                r.monitor_pid and is_alive(r.monitor_pid, r.id, r.started_at)
                for r in (cur or row, row)
            )

        appended = follow_file(path, offset, running, name=real)
        yield from (rec for rec in appended if wanted(rec))
