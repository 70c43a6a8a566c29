"""A container's endpoints wired beside the runtime's create (`EarlySetup`).

Wiring a bridge endpoint is tens of milliseconds of netlink, database and
firewall work (and, cold, pyroute2's import: ~70 ms). The monitor forks a
child first; the child makes the container's network namespace (a thread's
unshare(CLONE_NEWNET): the child stays in its own and holds the new one by an
fd) and names it on its first line, `/proc/<child>/fd/<fd>`, which the bundle
gives the runtime to join. So the endpoints are wired in the child while the
monitor mounts the rootfs and runs the runtime's create, on the other CPU.
The child writes the container's hosts and resolv.conf only once the
monitor, past the create (the bundle's hostname exists then; the init holds
the namespace from then on), hands over the init's pid; it keeps the
namespace until the monitor closes its pipe; its answer is the
NetworkSettings (or the error). Where a namespace cannot be
made there, the child names none, and wires the init's namespace once it has
the pid.
"""

from __future__ import annotations

import contextlib
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from portique.engine.network import setup

if TYPE_CHECKING:
    from portique.engine.engine import Engine


class EarlySetup:
    """The network layer's work in a child process (the module's docstring).

    The monitor is single-threaded, so the fork is safe; the child touches none
    of the monitor's fds but its two pipes and exits with os._exit.
    """

    def __init__(self, eng: Engine, row: Any) -> None:
        import os

        to_child_r, self._to_child = os.pipe2(os.O_CLOEXEC)
        self._from_child, from_child_w = os.pipe2(os.O_CLOEXEC)
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                os.close(self._to_child)
                os.close(self._from_child)
                code = _early_child(eng, row, to_child_r, from_child_w)
            finally:
                os._exit(code)
        os.close(to_child_r)
        os.close(from_child_w)
        self.netns = ""
        self._rest = b""
        try:
            self.netns = self._first_line()
        except BaseException:
            self.close()
            raise

    def _first_line(self) -> str:
        """The namespace the child made ("" when none): /proc/<child>/fd/<fd>."""
        import os

        data = b""
        while b"\n" not in data:
            chunk = os.read(self._from_child, 4096)
            if not chunk:
                break
            data += chunk
        line, _, self._rest = data.partition(b"\n")
        fd = line.strip()
        return f"/proc/{self.pid}/fd/{int(fd)}" if fd.isdigit() else ""

    def finish(self, pid: int) -> dict[str, Any]:
        """Hand over the init's pid; the NetworkSettings once the endpoints exist."""
        import json
        import os

        from portique.errors import PortiqueError

        try:
            with contextlib.suppress(OSError):  # a child that died answers nothing
                os.write(self._to_child, f"{pid}\n".encode())
            os.close(self._to_child)
            self._to_child = -1
            chunks = [self._rest]
            while chunk := os.read(self._from_child, 65536):
                chunks.append(chunk)
        finally:
            self.close()
        reply = json.loads(
            b"".join(chunks) or b'{"error": "network set-up process died", "code": 125}'
        )
        if "error" in reply:
            exc = PortiqueError(str(reply["error"]))
            exc.exit_code = int(reply.get("code") or 125)
            raise exc
        settings: dict[str, Any] = reply["settings"]
        return settings

    def close(self) -> None:
        """Reap the child (after an abort: closing its pipe makes it exit at once)."""
        import os

        for fd in (self._to_child, self._from_child):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._to_child = self._from_child = -1
        if self.pid > 0:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0


def _early_child(eng: Engine, row: Any, pid_r: int, out_w: int) -> int:  # pragma: no cover
    import json
    import os

    from portique.errors import PortiqueError

    def answer(reply: dict[str, Any]) -> None:
        data = json.dumps(reply).encode()
        with contextlib.suppress(OSError):  # the monitor gave up: nobody reads
            while data:
                data = data[os.write(out_w, data) :]

    netns_fd = _new_netns()
    os.write(out_w, b"%d\n" % netns_fd)
    # Import the network layer (and pyroute2, through bridge) while the monitor
    # runs the runtime's create (a warm process has them already).
    import portique.network.bridge
    import portique.network.networks  # noqa: F401

    code = 1
    with os.fdopen(pid_r, "rb") as f:

        def created() -> int:
            """The init's pid, once the monitor created the container (its bundle
            files written); 0 when the monitor gave up before."""
            line = f.readline().strip()
            return int(line) if line.isdigit() else 0

        def before_files() -> None:
            if not created():
                raise PortiqueError("the container was not created")

        if netns_fd < 0:
            pid, netns, wait = created(), "", None
            if not pid:
                return 0  # the monitor gave up before the container existed
        else:
            # Wired now, beside the create; the files once the bundle has them.
            pid, netns, wait = 0, f"/proc/self/fd/{netns_fd}", before_files
        try:
            with ExitStack() as stack:
                settings = setup(eng, row, pid, stack, netns, wait)
                stack.pop_all()  # the endpoints stay: the monitor now owns their release
            answer({"settings": settings})
            code = 0
        except PortiqueError as exc:
            answer({"error": str(exc), "code": exc.exit_code})
        except Exception as exc:  # an OSError or a bug: one line for the user, exit 125
            answer({"error": f"network set-up failed: {exc}", "code": 125})
        os.close(out_w)
        if netns_fd >= 0:
            f.read()  # the namespace is held until the init has joined it
    return code


def _new_netns() -> int:  # pragma: no cover - in EarlySetup's child
    """A new network namespace held by an fd of ours, or -1 where none can be made.

    Made by a thread of its own: a thread's unshare(CLONE_NEWNET) moves only
    that thread, so this process stays in its namespace without a setns back
    (which a rootless engine may not be allowed into)."""
    import os
    import threading

    from portique.linux.ns import CLONE_NEWNET, unshare

    made = [-1]

    def make() -> None:
        try:
            unshare(CLONE_NEWNET)
            made[0] = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            pass

    thread = threading.Thread(target=make, name="netns")
    thread.start()
    thread.join()
    return made[0]


__all__ = ["EarlySetup"]
