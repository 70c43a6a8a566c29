"""What every verb receives: the global flags, and the runtime log.

The log speaks runc's formats because containerd's shim reads the last error
from it (`--log-format json`: one object a line with level, msg and time).
"""

from __future__ import annotations

import os
import time

# Keep this module cheap to import (no json, dataclasses, pathlib): it is on
# the path of every call, `--version` included.
TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from _typeshed import StrPath

    from portique.runtime import Runtime


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def format_entry(level: str, msg: str, *, json_format: bool, when: str | None = None) -> str:
    """One log line in runc's (logrus's) json or text shape, newline included."""
    from portique.jsonc import dumps

    when = when or _timestamp()
    if json_format:
        return dumps({"level": level, "msg": msg, "time": when}) + "\n"
    return f"time={dumps(when)} level={level} msg={dumps(msg)}\n"


class RuntimeLog:
    """Appends runc-style entries to `--log`; a no-op without it."""

    def __init__(self, path: StrPath | None, *, json_format: bool, debug: bool) -> None:
        self.path = path
        self.json_format = json_format
        self.debug_enabled = debug

    def write(self, level: str, msg: str) -> None:
        if self.path is None:
            return
        line = format_entry(level, msg, json_format=self.json_format).encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return  # the log is best effort: stderr still has the message
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def error(self, msg: str) -> None:
        self.write("error", msg)

    def warning(self, msg: str) -> None:
        self.write("warning", msg)

    def debug(self, msg: str) -> None:
        if self.debug_enabled:
            self.write("debug", msg)


class Context:
    """The global flags every verb sees, and the runtime library on demand."""

    __slots__ = ("_runtime", "criu", "debug", "log", "root", "rootless")

    def __init__(
        self,
        root: str,
        log: RuntimeLog,
        *,
        debug: bool = False,
        rootless: str = "auto",
        criu: str = "criu",
    ) -> None:
        self.root = root
        self.log = log
        self.debug = debug
        self.rootless = rootless
        self.criu = criu
        self._runtime: Runtime | None = None

    def runtime(self) -> Runtime:
        """The library, imported on first use (keeps `--version`/`spec` lean)."""
        if self._runtime is None:
            from portique.linux.kernel import LinuxKernel
            from portique.runtime import Runtime

            self._runtime = Runtime(self.root, LinuxKernel())
        return self._runtime
