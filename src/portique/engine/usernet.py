"""User-mode networking for a rootless engine's containers (slirp4netns).

A rootless engine (engine/rootless.py) owns no interface on the host: its
user namespace does not own the host's network namespace, so no veth, bridge
or nftables rule can be made there. The default network of its containers is
Debian's slirp4netns instead, one process per container started by the
monitor's network set-up: it makes `tap0` inside the container's namespace
(10.0.2.100/24, gateway 10.0.2.2, DNS relay 10.0.2.3, MTU 65520) and carries
the container's connections out through sockets of the user's own, in the
host's namespace. 10.0.2.2 reaches the host's loopback. Published ports
(`-p HOSTPORT:PORT`) are slirp4netns host forwards, added through its API
socket; a host port below net.ipv4.ip_unprivileged_port_start is refused
when the container is created (rootless.check_ports).

The process is recorded in `<runroot>/containers/<id>/slirp.pid` (pid and
start time) and killed by that pid when the container's network is released
(exit, removal) or its start fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portique.errors import PortiqueError

if TYPE_CHECKING:
    from portique.engine.engine import Engine

GUEST_IP = "10.0.2.100"
GATEWAY = "10.0.2.2"
DNS = "10.0.2.3"
PREFIX = 24
MTU = 65520
READY_TIMEOUT = 30.0
PID_FILE = "slirp.pid"
API_SOCKET = "slirp.sock"
_SEARCH_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"


def binary() -> str:
    path = shutil.which("slirp4netns", path=_SEARCH_PATH)
    if path is None:
        raise PortiqueError(
            "a rootless container's network needs slirp4netns: install Debian's slirp4netns"
            " package, or run with --network none or --network host"
        )
    return path


def start(eng: Engine, cid: str, pid: int, ports: list[Any]) -> list[Any]:
    """Wire the network namespace of the container whose init is `pid`;
    the published ports (PortMapping, host ports chosen where 0)."""
    run_dir = eng.paths(cid).run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    stop(eng, cid)  # a restart's previous one
    launch(run_dir, [str(pid), "tap0"])
    try:
        return [forward_to(run_dir, m, m.container_port) for m in ports]
    except BaseException:
        stop(eng, cid)
        raise


def start_for_path(run_dir: Path, netns: Path) -> None:
    """A slirp4netns for the network namespace bind-mounted at `netns`."""
    stop_dir(run_dir)
    launch(run_dir, ["--netns-type=path", str(netns), "tap0"])


def launch(run_dir: Path, target: list[str]) -> None:
    """Start slirp4netns for `target`, recorded in `run_dir`; wait until ready."""
    api = run_dir / API_SOCKET
    with contextlib.suppress(FileNotFoundError):
        api.unlink()
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    log = os.open(
        run_dir / "slirp.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600
    )
    args = [
        binary(),
        "--configure",
        f"--mtu={MTU}",
        f"--ready-fd={ready_w}",
        f"--api-socket={API_SOCKET}",  # relative to its cwd: sun_path holds 108 bytes
        "--enable-sandbox",
        "--enable-seccomp",
        *target,
    ]
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(ready_w,),
            start_new_session=True,
            close_fds=True,
            cwd=run_dir,
        )
    finally:
        os.close(ready_w)
        os.close(log)
    _record(run_dir / PID_FILE, proc.pid)
    try:
        _wait_ready(ready_r, proc, run_dir / "slirp.log")
    except BaseException:
        stop_dir(run_dir)
        raise
    finally:
        os.close(ready_r)


def _record(path: Path, pid: int) -> None:
    from portique.fileio import atomic_write
    from portique.linux.proc import start_time

    atomic_write(path, f"{pid} {start_time(pid)}".encode())


def _wait_ready(ready_r: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([ready_r], [], [], min(left, 0.5))
        if readable and os.read(ready_r, 16):
            return
        if readable or proc.poll() is not None:
            break
    why = ""
    with contextlib.suppress(OSError):
        lines = log.read_text(errors="replace").strip().splitlines()
        lines = [line for line in lines if not line.startswith("WARNING")] or lines
        why = lines[-1] if lines else ""
    raise PortiqueError(f"slirp4netns did not start{': ' + why if why else ''}")


def forward_to(run_dir: Path, mapping: Any, guest_port: int) -> Any:
    """A host forward of `mapping`'s host port to 10.0.2.100:`guest_port`
    (0: the host port); the mapping with its host port chosen."""
    from portique.network.types import PortMapping

    api = run_dir / API_SOCKET
    host_port = mapping.host_port or _free_port(mapping.host_ip, str(mapping.proto))
    request = {
        "execute": "add_hostfwd",
        "arguments": {
            "proto": str(mapping.proto),
            "host_addr": mapping.host_ip or "0.0.0.0",
            "host_port": host_port,
            "guest_addr": GUEST_IP,
            "guest_port": guest_port or host_port,
        },
    }
    reply = _call(api, request)
    if "error" in reply:
        desc = (reply.get("error") or {}).get("desc") or "refused"
        raise PortiqueError(
            f"publishing {mapping.host_ip}:{host_port}->{mapping.container_port}/{mapping.proto}:"
            f" {desc}"
        )
    return PortMapping(
        container_port=mapping.container_port,
        host_port=host_port,
        host_ip=mapping.host_ip,
        proto=mapping.proto,
    )


def _call(api: Path, request: dict[str, Any]) -> dict[str, Any]:
    dfd = os.open(api.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    with contextlib.ExitStack() as stack:
        stack.callback(os.close, dfd)
        s = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        s.settimeout(10)
        s.connect(f"/proc/self/fd/{dfd}/{api.name}")
        s.sendall(json.dumps(request).encode())
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks) or b"{}")
    return reply if isinstance(reply, dict) else {"error": {"desc": "bad reply"}}


def _free_port(host_ip: str, proto: str) -> int:
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host_ip if host_ip not in ("", "0.0.0.0") else "", 0))
        return int(s.getsockname()[1])


def unforward(run_dir: Path, mapping: Any) -> None:
    """Remove the host forward of `mapping` (best effort: slirp4netns may be gone)."""
    with contextlib.suppress(OSError, ValueError):
        listed = _call(run_dir / API_SOCKET, {"execute": "list_hostfwd"})
        for entry in listed.get("entries") or ():
            if entry.get("host_port") == mapping.host_port and entry.get("proto") == str(
                mapping.proto
            ):
                request = {"execute": "remove_hostfwd", "arguments": {"id": entry.get("id")}}
                _call(run_dir / API_SOCKET, request)


def stop(eng: Engine, cid: str) -> None:
    """Kill the container's slirp4netns, by the pid and start time recorded."""
    stop_dir(eng.paths(cid).run_dir)


def stop_dir(run_dir: Path) -> None:
    """Kill the slirp4netns recorded in `run_dir`."""
    from portique.linux.proc import is_alive

    pid_file = run_dir / PID_FILE
    try:
        pid_s, _, start_s = pid_file.read_text().partition(" ")
        pid, start = int(pid_s), int(start_s)
    except (OSError, ValueError):
        return
    if pid > 1 and is_alive(pid, start):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()


def settings(ports: list[Any]) -> dict[str, Any]:
    """NetworkSettings of a container on the user-mode network."""
    published: dict[str, list[dict[str, str]] | None] = {}
    for m in ports:
        published.setdefault(f"{m.container_port}/{m.proto}", []).append(  # type: ignore[union-attr]
            {"HostIp": m.host_ip, "HostPort": str(m.host_port)}
        )
    return {
        "Networks": {
            "bridge": {
                "NetworkID": "slirp4netns",
                "EndpointID": "",
                "Gateway": GATEWAY,
                "IPAddress": GUEST_IP,
                "IPPrefixLen": PREFIX,
                "MacAddress": "",
                "Aliases": None,
            }
        },
        "Ports": published,
        "IPAddress": GUEST_IP,
        "IPPrefixLen": PREFIX,
        "Gateway": GATEWAY,
        "MacAddress": "",
        "PortsText": ", ".join(
            f"{m.host_ip}:{m.host_port}->{m.container_port}/{m.proto}" for m in ports
        ),
    }


def recorded_ports(row: Any) -> list[Any]:
    """A rootless container's published ports, as its start recorded them
    (NetworkSettings.Ports): none unless it runs."""
    from portique.network.types import PortMapping, Proto

    if row.status.value not in ("running", "paused", "restarting"):
        return []
    ports = (row.config.get("NetworkSettings") or {}).get("Ports") or {}
    return [
        PortMapping(
            int(key.partition("/")[0]),
            int(b["HostPort"]),
            b["HostIp"],
            Proto(key.partition("/")[2] or "tcp"),
        )
        for key, binds in ports.items()
        for b in binds or ()
    ]
