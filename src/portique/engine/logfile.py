"""The json-file log writer, small enough for the monitor.

Docker's format: one JSON object per line, {"log": ..., "stream": ..., "time": ...}.
This module imports only `os`, `time` and `_json`'s C string encoder (the
`json` package would pull in `re` and its decoder): it is loaded by the
long-lived monitor, whose memory we keep minimal.
"""

from __future__ import annotations

import os
import time
from _json import encode_basestring_ascii

MAX_LINE = 16 * 1024  # longer lines are split into several records, as Docker does


def rfc3339_nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def record(stream: str, line: bytes, now_ns: int | None = None) -> bytes:
    text = line.decode("utf-8", "replace")
    stamp = rfc3339_nano(time.time_ns() if now_ns is None else now_ns)
    encoded: str = encode_basestring_ascii(text)
    return f'{{"log":{encoded},"stream":"{stream}","time":"{stamp}"}}\n'.encode()


class LogWriter:
    """Splits each stream into lines and appends one record per line.

    Rotation (`--log-opt max-size=N,max-file=K`): a write that would take the
    file past `max_size` first renames it to PATH.1 (PATH.1 to PATH.2, ...,
    keeping K files in all; with K = 1 the file starts over), as Docker's
    json-file driver. `disabled` (`--log-driver none`) writes nothing.
    """

    # Slots: see engine/monitor.py's Monitor.
    __slots__ = ("_partial", "disabled", "fd", "max_file", "max_size", "path", "size")

    def __init__(
        self, path: str, max_size: int = 0, max_file: int = 1, disabled: bool = False
    ) -> None:
        self.path = path
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self.disabled = disabled
        self.fd = -1 if disabled else self._open()
        self.size = 0 if disabled else os.fstat(self.fd).st_size
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def _rotate(self) -> None:
        try:
            if self.max_file > 1:
                for i in range(self.max_file - 1, 0, -1):
                    older = f"{self.path}.{i - 1}" if i > 1 else self.path
                    if os.path.exists(older):
                        os.replace(older, f"{self.path}.{i}")
            else:
                os.truncate(self.path, 0)
            fd = self._open()
        except OSError:
            return  # keep appending to what we have rather than lose the stream
        os.close(self.fd)
        self.fd = fd
        self.size = 0

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial[stream] + data
        out = []
        while buf:
            nl = buf.find(b"\n", 0, MAX_LINE)
            if nl >= 0:
                out.append(record(stream, buf[: nl + 1]))
                buf = buf[nl + 1 :]
            elif len(buf) >= MAX_LINE:
                out.append(record(stream, buf[:MAX_LINE]))
                buf = buf[MAX_LINE:]
            else:
                break
        self._partial[stream] = buf
        if out:
            self._append_records(out)

    def flush(self) -> None:
        out = [record(s, b) for s, b in self._partial.items() if b]
        self._partial = {"stdout": b"", "stderr": b""}
        if out:
            self._append_records(out)

    def close(self) -> None:
        self.flush()
        if self.fd >= 0:
            os.close(self.fd)

    def _append_records(self, records: list[bytes]) -> None:
        """One write per batch; with rotation, the batch is cut where the file fills."""
        if self.disabled:
            return
        if not self.max_size:
            self._append(b"".join(records))
            return
        batch: list[bytes] = []
        size = self.size
        for rec in records:
            if size and size + len(rec) > self.max_size:
                if batch:
                    self._append(b"".join(batch))
                    batch = []
                self._rotate()
                size = self.size
            batch.append(rec)
            size += len(rec)
        if batch:
            self._append(b"".join(batch))

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError:
                return  # a full disk must not kill the monitor: the log loses lines
            view = view[n:]
            self.size += n
