"""A rootless engine's own network namespace: where its user-defined networks live.

A user's engine cannot make interfaces in the host's network namespace (the
initial user namespace owns it). Its user-defined networks live instead in
one network namespace of the engine's (podman's "rootless netns"), made on
first use and bind-mounted at `<runroot>/netns/engine` in the engine's mount
namespace: bridges, veths, nftables tables and the networks' DNS servers,
all made by the unchanged network layer (portique.network), whose every
call runs in a thread of its own that entered that namespace
(`NetnsNetworks`). The thread ends with the call: setns(CLONE_NEWNET) acts on
one thread, and the runtime forks only while no other thread runs.

Outbound traffic leaves through a slirp4netns attached to that namespace
(tap0 10.0.2.100, default route through 10.0.2.2; the network layer's
masquerade rules cover the bridges' subnets). A published port is a
slirp4netns host forward to 10.0.2.100:HOSTPORT, which the network layer's
DNAT rules carry to the container. Its pid and start time are in
`<runroot>/netns/slirp.pid`; `system migrate` ends it with the namespace.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import Any

NETNS_DIR = "netns"
ENGINE = "engine"


def netns_path(runroot: Path) -> Path:
    return runroot / NETNS_DIR / ENGINE


def exists(runroot: Path) -> bool:
    """The engine's network namespace has been made (and not ended)."""
    return _nsfs(netns_path(runroot))


def _nsfs(path: Path) -> bool:
    from portique.linux.mount import is_mountpoint

    return is_mountpoint(path)


def ensure(root: Path, runroot: Path) -> Path:
    """The engine's network namespace, made (with its slirp4netns) on first use."""
    path = netns_path(runroot)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = os.open(path.parent / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _nsfs(path):
            _make(path)
        if not _slirp_alive(runroot):
            _start_slirp(root, runroot, path)
    finally:
        os.close(lock)
    return path


def _make(path: Path) -> None:
    from portique.engine.netns import loopback_up
    from portique.linux import mount as m
    from portique.linux import ns

    path.touch(mode=0o600, exist_ok=True)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - a short-lived child
        code = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            ns.unshare(ns.CLONE_NEWNET)
            os.write(ready_w, b"n")
            os.read(done_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"n":
            from portique.errors import PortiqueError

            raise PortiqueError("making the engine's network namespace: unshare failed")
        m.mount(f"/proc/{pid}/ns/net", path, None, m.MS_BIND)
    finally:
        os.close(done_w)
        os.close(ready_r)
        os.waitpid(pid, 0)
    loopback_up(str(path))


def _slirp_alive(runroot: Path) -> bool:
    from portique.linux.proc import is_alive

    try:
        pid_s, _, start_s = (runroot / NETNS_DIR / "slirp.pid").read_text().partition(" ")
        return is_alive(int(pid_s), int(start_s))
    except (OSError, ValueError):
        return False


def _start_slirp(root: Path, runroot: Path, path: Path) -> None:
    from portique.engine import usernet

    usernet.start_for_path(runroot / NETNS_DIR, path)


def stop(runroot: Path) -> None:
    """End the engine's slirp4netns and unmount its namespace (system migrate)."""
    from portique.engine import usernet
    from portique.linux import mount as m

    usernet.stop_dir(runroot / NETNS_DIR)
    path = netns_path(runroot)
    with contextlib.suppress(OSError):
        m.umount(path, m.MNT_DETACH)


def forward(runroot: Path, mappings: list[Any]) -> list[Any]:
    """Host forwards to the engine's namespace for `mappings` (PortMapping,
    host ports chosen where 0); the mappings as published."""
    from portique.engine import usernet

    return [usernet.forward_to(runroot / NETNS_DIR, m, m.host_port) for m in mappings]


def unforward(runroot: Path, mappings: list[Any]) -> None:
    from portique.engine import usernet

    for m in mappings:
        usernet.unforward(runroot / NETNS_DIR, m)


class NetnsNetworks:
    """portique.network's facade, each call run inside the engine's network
    namespace by a thread of its own (see the module docstring)."""

    def __init__(self, root: Path, runroot: Path) -> None:
        self.root = root
        self.runroot = runroot

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._run(name, args, kwargs)

        return call

    def _run(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        from portique.linux.ns import CLONE_NEWNET, setns

        path = ensure(self.root, self.runroot)
        result: list[Any] = []
        failed: list[BaseException] = []

        def work() -> None:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    setns(fd, CLONE_NEWNET)
                finally:
                    os.close(fd)
                from portique.network.networks import Networks

                nets = Networks(self.root, run_root=self.runroot)
                try:
                    result.append(getattr(nets, name)(*args, **kwargs))
                finally:
                    nets.close()
            except BaseException as exc:  # handed to the caller's thread
                failed.append(exc)

        worker = threading.Thread(target=work, name=f"netns-{name}")
        worker.start()
        worker.join()
        if failed:
            raise failed[0]
        return result[0]
