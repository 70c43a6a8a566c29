"""The parent/child creation protocol: typed messages over a SOCK_SEQPACKET socketpair.

    parent (runtime)                 stage 1 (forked)              init (forked by stage 1)
                                     join the cgroup (moves itself)
    Go  ───────────────────────────▶ join namespaces by path
                                     unshare(user)
    write uid/gid maps ◀──────────── MapIds(pid)
    MapIdsDone ────────────────────▶ unshare(other namespaces)
                                     fork ───────────────────────▶ (PID 1 of a new pid ns)
    reap stage 1 ◀────────────────── InitPid(pid); then a pipe lets the init go on; exit
                                                                   mount the rootfs
    prestart+createRuntime ◀──────────────────────────────────────── RunHooks
    HooksDone(state) ───────────────────────────────────────────────▶ createContainer hooks,
                                                                   pivot_root, masks, sysctl
    forward to --console-socket ◀─────────────────────────────────── Pty + fd (terminal only)
                                                                   rlimits, user, caps, fds, cwd
    state.json (created) ◀─────────────────────────────────────────── Ready
                                                                   block on exec.fifo,
                                                                   startContainer hooks,
                                                                   seccomp, execve
    any step may answer Failed(kind, message) instead; exec success closes the
    socket (it is O_CLOEXEC), so the parent of `run`/`exec` reads EOF. After
    the seccomp filter, a failed execve reports with a bare write(2).

Messages are frozen value classes encoded as one JSON object per datagram
(no pickle: the child side runs code the container influences).

The socketpair is the C module's (`_socket`): socket.py costs 2-3 ms to
import (its constants become enums, selectors comes along), a tenth of a
container start, and the runtime needs none of it.
"""

from __future__ import annotations

import _socket
import sys

from portique import jsonc
from portique.errors import PortiqueError
from portique.oci.value import as_dict, value

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import ClassVar, Final, TypeVar

MAX_MESSAGE: Final = 65536
MAX_FDS: Final = 4
_FD_SIZE: Final = 4  # an int in SCM_RIGHTS


@value
class Go:
    """Parent -> stage 1 (or the exec helper): go on."""

    kind: ClassVar[str] = "go"


@value
class MapIds:
    """Stage 1 -> parent: write the uid/gid maps of `pid`."""

    kind: ClassVar[str] = "map_ids"
    pid: int


@value
class MapIdsDone:
    """Parent -> stage 1: the maps are written."""

    kind: ClassVar[str] = "map_ids_done"


@value
class InitPid:
    """Stage 1 -> parent: the host pid of the container init (or exec process)."""

    kind: ClassVar[str] = "init_pid"
    pid: int


@value
class RunHooks:
    """Init -> parent: namespaces and mounts exist; run prestart/createRuntime."""

    kind: ClassVar[str] = "run_hooks"


@value
class HooksDone:
    """Parent -> init: the runtime-namespace hooks succeeded; `state` is the
    OCI state (status "created", the init's host pid) that the init's own
    createContainer and startContainer hooks read on stdin."""

    kind: ClassVar[str] = "hooks_done"
    state: str = ""


@value
class Pty:
    """Carries the pty master as SCM_RIGHTS."""

    kind: ClassVar[str] = "pty"


@value
class Ready:
    """Init -> parent: set up; now blocking on the exec fifo."""

    kind: ClassVar[str] = "ready"


@value
class Failed:
    """`kind_of_error`: "notfound" (127), "notexec" (126) or "error"."""

    kind: ClassVar[str] = "failed"
    error: str
    message: str


Message = Go | MapIds | MapIdsDone | InitPid | RunHooks | HooksDone | Pty | Ready | Failed

if TYPE_CHECKING:
    M = TypeVar("M", Go, MapIds, MapIdsDone, InitPid, RunHooks, HooksDone, Pty, Ready, Failed)

_TYPES: Final[dict[str, type[Message]]] = {
    t.kind: t for t in (Go, MapIds, MapIdsDone, InitPid, RunHooks, HooksDone, Pty, Ready, Failed)
}


def encode(msg: Message) -> bytes:
    """One datagram. Also written with a bare write(2) on the socket's fd by
    a process that can no longer make other calls (process.exec_last)."""
    body = {"kind": msg.kind, **as_dict(msg)}
    return jsonc.dumps(body, separators=(",", ":")).encode()


class ProtocolError(PortiqueError):
    """The other side sent something unexpected or went away."""


class Channel:
    """One end of the socketpair (close-on-exec, as are the fds it receives)."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC, 0)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def send(self, msg: Message, fds: tuple[int, ...] = ()) -> None:
        data = encode(msg)
        if fds:
            raw = b"".join(fd.to_bytes(_FD_SIZE, sys.byteorder) for fd in fds)
            self.sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, raw)])
        else:
            self.sock.sendall(data)

    def recv(self, timeout: float | None = None) -> tuple[Message | None, list[int]]:
        """The next message and any fds it carried; (None, []) on EOF."""
        self.sock.settimeout(timeout)
        try:
            data, fds = self._recvmsg()
        except TimeoutError:
            raise ProtocolError("container init did not answer in time") from None
        except ConnectionResetError:
            return None, []
        finally:
            self.sock.settimeout(None)
        if not data:
            for fd in fds:
                _close(fd)
            return None, []
        try:
            body = jsonc.loads(data)
            cls = _TYPES[body.pop("kind")]
            return cls(**body), fds
        except (ValueError, KeyError, TypeError) as e:
            for fd in fds:
                _close(fd)
            raise ProtocolError(f"bad message from container init: {e}") from None

    def _recvmsg(self) -> tuple[bytes, list[int]]:
        data, ancdata, _flags, _addr = self.sock.recvmsg(
            MAX_MESSAGE, _socket.CMSG_LEN(MAX_FDS * _FD_SIZE), _socket.MSG_CMSG_CLOEXEC
        )
        fds: list[int] = []
        for level, kind, raw in ancdata:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                whole = len(raw) - len(raw) % _FD_SIZE
                fds += (
                    int.from_bytes(raw[i : i + _FD_SIZE], sys.byteorder, signed=True)
                    for i in range(0, whole, _FD_SIZE)
                )
        return data, fds

    def expect(self, cls: type[M], timeout: float | None = None) -> M:
        msg, fds = self.recv(timeout)
        for fd in fds:
            _close(fd)
        if isinstance(msg, Failed):
            raise ProtocolError(msg.message)
        if not isinstance(msg, cls):
            got = "end of stream" if msg is None else msg.kind
            raise ProtocolError(f"expected {cls.kind}, got {got}")
        return msg


def _close(fd: int) -> None:
    import os

    try:
        os.close(fd)
    except OSError:
        pass
