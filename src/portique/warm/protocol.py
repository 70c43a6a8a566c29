"""The fork-server's wire format, shared by the thin client and the worker.

Kept to `os` and `sys` (the client imports it before anything else).

One connection per command, on `<runroot>/warm.sock` (SOCK_STREAM):

    client -> worker  one sendmsg: 4-byte big-endian length, then the request
                      (NUL-separated: MAGIC, the client's interpreter, its
                      package directory, umask, argc, argv..., environ...)
                      with SCM_RIGHTS [stdin, stdout, stderr, cwd (O_PATH)]
    worker -> client  b"P" with SCM_RIGHTS [a pidfd of the worker] (accepted),
                      or b"R<reason>\\n" (refused: the client runs in-process);
                      once the command returned and its output is flushed,
                      b"E<exit code>\\n" (the client leaves at once)
    server -> client  b"X<wait status>\\n" once the worker is reaped, then EOF
                      (what the client goes by when the worker died: a crash,
                      a signal)

Between the server and a worker, forked before its command arrives (its
SOCK_SEQPACKET channel, which then carries its monitor requests):

    server -> worker  b"C" with SCM_RIGHTS [the client's connection]

The client sends the signals it receives to the worker through the pidfd
(never through a pid that may be reused) and leaves with the worker's exit
code, or dies of the worker's signal.
"""

from __future__ import annotations

import os
import sys

MAGIC = b"portique-warm-1"
SOCKET_NAME = "warm.sock"
LOCK_NAME = "warm.lock"
PID_NAME = "warm.pid"
LOG_NAME = "warm.log"
MAX_REQUEST = 1 << 20  # argv + environment
ACCEPTED = b"P"
REFUSED = b"R"
EXITED = b"X"
FINISHED = b"E"
HANDOVER = b"C"


def identity() -> tuple[bytes, bytes]:
    """(interpreter, package directory): a server serves only its own installation."""
    import portique

    exe = os.path.realpath(sys.executable)  # python and python3 of one venv are one
    return os.fsencode(exe), os.fsencode(os.path.dirname(portique.__file__))


def encode_request(argv: list[str], umask: int) -> bytes:
    exe, pkg = identity()
    fields = [MAGIC, exe, pkg, b"%d" % umask, b"%d" % len(argv)]
    fields += [os.fsencode(a) for a in argv]
    fields += [k + b"=" + v for k, v in os.environb.items()]
    body = b"\0".join(fields)
    return len(body).to_bytes(4, "big") + body


class Request:
    __slots__ = ("argv", "env", "exe", "pkg", "umask")

    def __init__(self, body: bytes) -> None:
        fields = body.split(b"\0")
        if len(fields) < 5 or fields[0] != MAGIC:
            raise ValueError("not a portique warm request")
        self.exe, self.pkg = fields[1], fields[2]
        self.umask = int(fields[3]) & 0o777
        argc = int(fields[4])
        if argc < 0 or 5 + argc > len(fields):
            raise ValueError("bad argument count")
        self.argv = [os.fsdecode(a) for a in fields[5 : 5 + argc]]
        self.env: dict[bytes, bytes] = {}
        for item in fields[5 + argc :]:
            key, eq, value = item.partition(b"=")
            if eq and key:
                self.env[key] = value


def parse_end(data: bytes) -> tuple[bytes, int] | None:
    """(FINISHED, exit code) or (EXITED, wait status) from the lines after b"P"."""
    for line in data.split(b"\n")[:-1]:  # complete lines only
        kind, value = line[:1], line[1:]
        if kind in (FINISHED, EXITED) and value.isdigit():
            return kind, int(value)
    return None


def parse_exit(data: bytes) -> int | None:
    """The wait status in the server's b"X<status>\\n", or None."""
    at = data.rfind(EXITED)
    if at < 0:
        return None
    line = data[at + 1 :].split(b"\n", 1)[0]
    return int(line) if line.isdigit() else None
