"""Exec instances: create, start (hijacked, or detached), inspect, resize.

An exec instance lives as a JSON file under <runroot>/api/exec/ (workers are
separate processes: the one that creates it is rarely the one that starts
it). The starting worker runs the process through the engine (engine/exec.py
`prepare` + `spawn`, the checks and process of `portique exec`), pumps its
pipes or pty to the hijacked connection, and records the exit code. With a
tty it also listens on <id>.sock, where a resize from another worker lands.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from portique.api import streams
from portique.api.types import Request, Response, Route, json_response
from portique.errors import Conflict, InvalidArgument, NoSuchObject, PortiqueError

__all__ = ["ROUTES"]


def _dir(req: Request) -> Path:
    d = req.eng.runroot / "api" / "exec"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def _load(req: Request, eid: str) -> dict[str, Any]:
    if not eid.isalnum() or len(eid) != 64:
        raise NoSuchObject("exec instance", eid)
    try:
        data: dict[str, Any] = json.loads((_dir(req) / f"{eid}.json").read_bytes())
    except (FileNotFoundError, ValueError):
        raise NoSuchObject("exec instance", eid) from None
    return data


def _save(req: Request, doc: dict[str, Any]) -> None:
    from portique.fileio import atomic_write_json

    atomic_write_json(_dir(req) / f"{doc['ID']}.json", doc, 0o600, fsync=False)


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {key}: want an array of strings")
    return value


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidArgument(f"invalid {key}: want a boolean")
    return value


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key) or ""
    if not isinstance(value, str):
        raise InvalidArgument(f"invalid {key}: want a string")
    return value


_CREATE_FIELDS = frozenset(
    [
        "Container",
        "Detach",
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "DetachKeys",
        "Tty",
        "Env",
        "Cmd",
        "Privileged",
        "User",
        "WorkingDir",
        "ConsoleSize",
        "Container",  # docker-py sends the container's id again in the body
    ]
)


def _request(doc: dict[str, Any]) -> Any:
    from portique.engine.exec import ExecRequest

    size = doc.get("ConsoleSize")
    return ExecRequest(
        argv=tuple(doc["Cmd"]),
        env=tuple(doc["Env"]),
        user=doc["User"],
        workdir=doc["WorkingDir"],
        tty=doc["Tty"],
        stdin=doc["AttachStdin"],
        privileged=doc["Privileged"],
        console_size=(int(size[0]), int(size[1])) if size and size[0] and size[1] else None,
    )


KEEP_FINISHED = 3600.0  # seconds an ended exec instance stays inspectable


def _sweep(req: Request) -> None:
    """Forget exec instances that ended long ago (dockerd does too)."""
    import time

    now = time.time()
    for path in list(_dir(req).glob("*.json"))[:10000]:
        try:
            if now - path.stat().st_mtime < KEEP_FINISHED:
                continue
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and not doc.get("Running"):
            for suffix in (".json", ".start"):
                with contextlib.suppress(OSError):
                    path.with_suffix(suffix).unlink()


def create(req: Request) -> Response:
    from portique.engine import containers
    from portique.engine import exec as eexec
    from portique.engine.state import Event

    body = req.json(empty_ok=False)
    for key in body:
        if key not in _CREATE_FIELDS:
            raise InvalidArgument(f"unknown field {key}")
    size = body.get("ConsoleSize")
    if size is not None and (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and 0 <= v < 65536 for v in size)
    ):
        raise InvalidArgument("invalid ConsoleSize: want [rows, columns]")
    doc: dict[str, Any] = {
        "ID": os.urandom(32).hex(),
        "Cmd": _strings(body, "Cmd"),
        "Env": _strings(body, "Env"),
        "User": _str(body, "User"),
        "WorkingDir": _str(body, "WorkingDir"),
        "Tty": _bool(body, "Tty"),
        "AttachStdin": _bool(body, "AttachStdin"),
        "AttachStdout": _bool(body, "AttachStdout"),
        "AttachStderr": _bool(body, "AttachStderr"),
        "Privileged": _bool(body, "Privileged"),
        "DetachKeys": _str(body, "DetachKeys"),
        "ConsoleSize": size,
    }
    eexec.check_request(_request(doc))
    row = containers.get_for(req.eng, req.params["id"], Event.EXEC)
    doc.update(ContainerID=row.id, Running=False, ExitCode=None, Pid=0, Started=False)
    _sweep(req)
    _save(req, doc)
    return json_response({"Id": doc["ID"]}, 201)


def inspect(req: Request) -> Response:
    doc = _load(req, req.params["id"])
    return json_response(
        {
            "ID": doc["ID"],
            "Running": doc["Running"],
            "ExitCode": doc["ExitCode"],
            "ProcessConfig": {
                "tty": doc["Tty"],
                "entrypoint": doc["Cmd"][0] if doc["Cmd"] else "",
                "arguments": doc["Cmd"][1:],
                "privileged": doc["Privileged"],
                "user": doc["User"],
            },
            "OpenStdin": doc["AttachStdin"],
            "OpenStderr": doc["AttachStderr"],
            "OpenStdout": doc["AttachStdout"],
            "CanRemove": not doc["Running"],
            "ContainerID": doc["ContainerID"],
            "DetachKeys": doc["DetachKeys"],
            "Pid": doc["Pid"],
        }
    )


def start(req: Request) -> Response | None:
    from portique.engine import exec as eexec

    eid = req.params["id"]
    doc = _load(req, eid)
    body = req.json()
    detach = bool(body.get("Detach"))
    tty = bool(body.get("Tty", doc["Tty"]))
    size = body.get("ConsoleSize")
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size):
        doc["ConsoleSize"] = size
    if doc["Started"]:
        raise Conflict(f"exec instance {eid} has already been started")
    # One start: the file is claimed by renaming it to this worker's name first.
    claim = _dir(req) / f"{eid}.start"
    try:
        fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        os.close(fd)
    except FileExistsError:
        raise Conflict(f"exec instance {eid} has already been started") from None
    doc["Tty"] = tty
    row, process = eexec.prepare(req.eng, doc["ContainerID"], _request(doc))
    doc.update(Started=True, Running=True)
    _save(req, doc)
    if detach:
        spawned = eexec.spawn(req.eng, row, process, stdin=False)
        for fd in (spawned.master, spawned.stdout_r, spawned.stderr_r):
            if fd >= 0:
                os.close(fd)
        _finish(req, doc, spawned)
        return Response(200, b"", "text/plain")
    resize_sock = _resize_listener(req, eid) if tty else None
    spawned = eexec.spawn(req.eng, row, process, stdin=doc["AttachStdin"])
    kind = (
        "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
    )
    doc["Pid"] = spawned.pid
    _save(req, doc)
    try:
        client, pending = req.hijack(kind)
        if spawned.master >= 0:
            outputs = {spawned.master: 1}
            stdin_w = os.dup(spawned.master) if doc["AttachStdin"] else -1
        else:
            outputs = {}
            if doc["AttachStdout"]:
                outputs[spawned.stdout_r] = 1
            if doc["AttachStderr"]:
                outputs[spawned.stderr_r] = 2
            stdin_w = spawned.stdin_w
        master = spawned.master

        def on_resize(conn: socket.socket) -> None:
            conn.settimeout(2)
            words = conn.recv(64).split()
            if master >= 0 and len(words) == 2 and all(w.isdigit() for w in words):
                from portique.termio import set_window_size

                set_window_size(master, int(words[0]), int(words[1]))
                conn.sendall(b"ok")

        streams.pump_fds(
            client,
            pending,
            stdin_w,
            outputs,
            tty=tty,
            extra=resize_sock,
            on_extra=on_resize,
            done_pid=spawned.pid,
        )
        # The exit code is recorded before the stream ends: the client asks
        # for it (GET /exec/{id}/json) as soon as it sees the end.
        _finish(req, doc, spawned)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
    finally:
        for fd in (spawned.master, spawned.stdout_r, spawned.stderr_r):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if resize_sock is not None:
            resize_sock.close()
            with contextlib.suppress(OSError):
                (_dir(req) / f"{eid}.sock").unlink()
        if doc["Running"]:
            _finish(req, doc, spawned)
    return None


def _finish(req: Request, doc: dict[str, Any], spawned: Any) -> None:
    from portique.engine import exec as eexec

    try:
        code = eexec.finish(spawned)
    except PortiqueError as exc:
        code = exc.exit_code
    doc.update(Running=False, ExitCode=code, Pid=0)
    _save(req, doc)


def _resize_listener(req: Request, eid: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    path = _dir(req) / f"{eid}.sock"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    dfd = os.open(_dir(req), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        s.bind(f"/proc/self/fd/{dfd}/{eid}.sock")
    finally:
        os.close(dfd)
    s.listen(4)
    return s


def resize(req: Request) -> Response:
    eid = req.params["id"]
    doc = _load(req, eid)
    h, w = req.int_arg("h", 0), req.int_arg("w", 0)
    if h <= 0 or w <= 0 or h > 65535 or w > 65535:
        raise InvalidArgument(f"invalid terminal size {h}x{w}")
    if not doc["Tty"] or not doc["Running"]:
        raise Conflict(f"exec instance {eid} has no running terminal")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    dfd = os.open(_dir(req), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        s.settimeout(5)
        s.connect(f"/proc/self/fd/{dfd}/{eid}.sock")
        s.sendall(f"{h} {w}".encode())
        s.recv(8)
    except OSError:
        raise Conflict(f"exec instance {eid} has no running terminal") from None
    finally:
        os.close(dfd)
        s.close()
    return Response(200, b"", "text/plain")


ROUTES = [
    Route("POST", "/containers/{id}/exec", create),
    Route("POST", "/exec/{id}/start", start),
    Route("POST", "/exec/{id}/resize", resize),
    Route("GET", "/exec/{id}/json", inspect),
]
