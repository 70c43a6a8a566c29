"""Docker's json-file log: one JSON object per line, {"log", "stream", "time"}.

The writer (logfile.py) runs inside the monitor and stays tiny; this module
is the reader behind `portique logs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def tail_records(path: str, n: int) -> list[LogRecord]:
    """The last `n` records (all when n < 0), reading the file from its end:
    `logs --tail 10` of a large log touches only its last blocks."""
    if n < 0:
        return list(read_records(path))
    if n == 0:
        return []
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return []
    with f:
        pos = f.seek(0, 2)
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


def rotated_tail(path: str, n: int) -> list[LogRecord]:
    """tail_records over the rotated files: the newest file first, older ones
    only while more records are wanted."""
    out: list[LogRecord] = []
    for f in reversed(rotated_files(path)):
        if n >= 0 and len(out) >= n:
            break
        out = tail_records(f, n - len(out) if n >= 0 else -1) + out
    return out


def follow_file(
    path: str, offset: int, still_running: Callable[[], bool], poll: float = 0.1
) -> Iterator[LogRecord]:
    """Records appended after byte `offset` until `still_running()` is false and the
    file is drained; when the monitor rotates the file, the new one is followed."""
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
                rotated = os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
            except OSError:
                rotated = False
            if rotated:
                f.close()
                f = open(path, "rb")  # noqa: SIM115
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
) -> Iterator[LogRecord]:
    """`GET /containers/{id}/logs`: the container's records, the last `tail` of
    them (all when negative), those in [since, until] (unix ns, 0 for no
    bound), then with `follow` what it writes until it stops. The faces write
    them (the CLI to its stdout and stderr, the API in Docker's framing)."""
    import os

    from portique.engine import containers, db
    from portique.engine.state import has_monitor

    row = containers.get(eng, ref)
    log_config = row.config["HostConfig"].get("LogConfig") or {}
    if isinstance(log_config, dict) and log_config.get("Type") == "none":
        from portique.errors import Unsupported

        raise Unsupported("configured logging driver does not support reading")
    path = str(eng.paths(row.id).log)
    try:
        offset = os.path.getsize(path)
    except OSError:
        offset = 0

    def wanted(rec: LogRecord) -> bool:
        if since_ns or until_ns:
            t = rec.time_ns
            return not (since_ns and t < since_ns) and not (until_ns and t > until_ns)
        return True

    yield from (rec for rec in rotated_tail(path, tail) if wanted(rec))
    if follow:

        def running() -> bool:
            cur = db.get_container(eng.db, row.id)
            return cur is not None and has_monitor(containers.refresh(eng, cur).status)

        yield from (rec for rec in follow_file(path, offset, running) if wanted(rec))
