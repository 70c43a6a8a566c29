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
    """Splits each stream into lines and appends one record per line."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

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
            self._append(b"".join(out))

    def flush(self) -> None:
        out = [record(s, b) for s, b in self._partial.items() if b]
        self._partial = {"stdout": b"", "stderr": b""}
        if out:
            self._append(b"".join(out))

    def close(self) -> None:
        self.flush()
        os.close(self.fd)

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError:
                return  # a full disk must not kill the monitor: the log loses lines
            view = view[n:]
