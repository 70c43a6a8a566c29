"""A container's streams: attach (hijacked), wait, logs, resize, export, archive.

Attach to a created container (the docker CLI attaches before it starts):
the worker leaves a marker (markers.py) so that the start
holds the container's output until this attach reaches the monitor, and
connects once the monitor is up. A `wait` that has not reached the monitor
yet leaves a marker of its own, and the attach waits for it (briefly), so a
container that exits at once (`docker run --rm busybox true`) still gives
its waiter the exit code before the monitor removes it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portique.api import markers, streams
from portique.api.types import Request, Response, Route, StreamFile, json_line
from portique.errors import InvalidArgument, InvalidState, NotFound

if TYPE_CHECKING:
    from portique.engine import db

__all__ = ["ROUTES"]

POLL = 0.005
WAIT_MARKER_GRACE = 2.0


def _until_monitor(req: Request, cid: str, client: socket.socket | None) -> db.ContainerRow | None:
    """Poll until `cid` has a monitor (the row then), None if it ended first,
    was removed, or the client left."""
    from portique.engine import containers
    from portique.engine import db as edb
    from portique.engine import state as st

    for _ in range(1 << 40):
        row = edb.get_container(req.eng.db, cid)
        if row is None:
            return None
        if st.has_monitor(row.status) and (req.eng.paths(cid).run_dir / "m.sock").exists():
            return containers.refresh(req.eng, row)
        if (
            row.finished_at
            and row.status not in (st.Status.CREATED,)
            and not st.has_monitor(row.status)
        ):
            return row
        if client is not None and not streams.client_alive(client, half_close_ok=True):
            return None
        time.sleep(POLL)
    return None


# ------------------------------------------------------------------- attach


def attach(req: Request) -> Response | None:
    from portique.engine import attach as eattach
    from portique.engine import client as mclient
    from portique.engine import containers
    from portique.engine import state as st
    from portique.engine import stream as mon

    row = containers.get(req.eng, req.params["id"])
    if row.status == st.Status.PAUSED:
        raise InvalidState(f"cannot attach to a paused container {row.name}")
    tty = bool(row.config["Config"].get("Tty"))
    want_in = req.flag("stdin")
    want_out = req.flag("stdout")
    want_err = req.flag("stderr")
    keys = b"\x10\x11"
    if req.arg("detachKeys"):
        keys = eattach.parse_detach_keys(req.arg("detachKeys"))
    if not req.flag("stream") and not req.flag("logs"):
        raise InvalidArgument("attach needs stream=1 or logs=1")
    marker = markers.mine(req.eng, "attach", row.id)
    created = not st.has_monitor(row.status)
    if created and req.flag("stream"):
        marker.touch()
    kind = (
        "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
    )
    try:
        client, pending = req.hijack(kind)
        if req.flag("logs"):
            _replay_logs(req, row.id, client, tty, want_out, want_err)
        if not req.flag("stream"):
            return None
        cur = _until_monitor(req, row.id, client)
        if cur is None or not st.has_monitor(cur.status):
            return None
        deadline = time.monotonic() + WAIT_MARKER_GRACE
        while markers.live(req.eng, "wait", row.id) and time.monotonic() < deadline:
            time.sleep(POLL)
        try:
            mon_sock = mclient.connect(req.eng.paths(row.id), timeout=None)
        except mclient.MonitorGone:
            return None
        with mon_sock:
            mon_sock.sendall(
                mon.frame(
                    mon.HELLO, f"attach {int(want_in)} {int(want_out)} {int(want_err)}".encode()
                )
            )
            marker.unlink(missing_ok=True)
            streams.pump_monitor(
                client, pending, mon_sock, tty=tty, stdin=want_in, detach_keys=keys
            )
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
        return None
    finally:
        marker.unlink(missing_ok=True)


def _replay_logs(
    req: Request, cid: str, client: socket.socket, tty: bool, out: bool, err: bool
) -> None:
    from portique.engine import logs

    for rec in logs.container_logs(req.eng, cid):
        if (rec.stream == "stdout" and out) or (rec.stream == "stderr" and err):
            data = rec.log.encode()
            client.sendall(data if tty else streams.frame(2 if rec.stream == "stderr" else 1, data))


# --------------------------------------------------------------------- wait


def wait(req: Request) -> Response | None:
    """Docker's wait: not-running (default), next-exit, removed. The answer's
    head goes out at once (clients wait for it before they start the
    container), the status when the condition holds."""
    from portique.engine import containers
    from portique.engine import db as edb
    from portique.engine import state as st

    condition = req.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {condition!r}")
    row = containers.get(req.eng, req.params["id"])
    cid = row.id
    marker = markers.mine(req.eng, "wait", cid)
    if condition != "not-running" or st.has_monitor(row.status):
        marker.touch()
    try:
        out = req.stream()
        conn = req.conn.sock
        code: int | None = None
        if condition == "not-running" and not st.has_monitor(row.status):
            code = row.exit_code
        base = (row.started_at, row.finished_at, row.restart_count)
        for _ in range(1 << 40):
            if code is not None:
                break
            cur = edb.get_container(req.eng.db, cid)
            if cur is None:
                code = row.exit_code
                break
            row = cur
            changed = (cur.started_at, cur.finished_at, cur.restart_count) != base
            if st.has_monitor(cur.status) and (req.eng.paths(cid).run_dir / "m.sock").exists():
                got = _wait_monitor(req, cid, marker)
                if got is not None:
                    code = got
                    break
            elif (
                changed and not st.has_monitor(cur.status) and cur.status != st.Status.CREATED
            ) or (condition == "not-running" and not st.has_monitor(cur.status)):
                code = cur.exit_code
                break
            if not streams.client_alive(conn):
                return None
            time.sleep(POLL)
        marker.unlink(missing_ok=True)
        if condition != "removed":
            # The monitor writes the last of the output to the log after the
            # exit: a client reads the logs right after wait (docker-py's run).
            containers.wait_monitor_gone(row)
        if condition == "removed":
            for _ in range(1 << 40):
                if edb.get_container(req.eng.db, cid) is None:
                    break
                cur = containers.refresh(req.eng, edb.get_container(req.eng.db, cid) or row)
                if not cur.config["HostConfig"].get("AutoRemove") and not streams.client_alive(
                    conn
                ):
                    return None
                time.sleep(POLL * 4)
            from portique.engine.recovery import wait_removed

            wait_removed(req.eng, cid)
        out.write(json_line({"StatusCode": code or 0, "Error": None}))
        return None
    finally:
        marker.unlink(missing_ok=True)


def _wait_monitor(req: Request, cid: str, marker: Path) -> int | None:
    """The exit code from the monitor's `wait`; the marker goes once we are
    connected (the attach waits for that, see the module docstring). None
    when the monitor went away without one, or the client left."""
    import select

    from portique.api.http import ClientGone
    from portique.engine import client as mclient
    from portique.engine import stream as mon

    try:
        sock = mclient.connect(req.eng.paths(cid), timeout=None)
    except mclient.MonitorGone:
        return None
    client = req.conn.sock
    with sock:
        try:
            sock.sendall(mon.frame(mon.HELLO, b"wait"))
        except OSError:
            return None  # the monitor was on its way out
        marker.unlink(missing_ok=True)
        buf = b""
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(client, select.POLLRDHUP)
        for _ in range(1 << 40):
            events = dict(poller.poll())
            if events.get(client.fileno(), 0):
                raise ClientGone
            try:
                data = sock.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            frames, buf = mon.split_frames(buf + data)
            for kind, payload in frames:
                if kind == mon.EXIT:
                    try:
                        return int(payload)
                    except ValueError:
                        return None
    return None


# --------------------------------------------------------------------- logs


def container_logs(req: Request) -> Response | None:
    from portique.engine import containers, logs

    row = containers.get(req.eng, req.params["id"])
    want_out, want_err = req.flag("stdout"), req.flag("stderr")
    if not (want_out or want_err):
        raise InvalidArgument("you must choose at least one stream")
    tail_text = req.arg("tail", "all")
    if tail_text in ("all", ""):
        tail = -1
    else:
        try:
            tail = int(tail_text)
        except ValueError:
            raise InvalidArgument(f"invalid tail value {tail_text!r}") from None
    since = logs.parse_since(req.arg("since")) if req.arg("since") not in ("", "0") else 0
    until = logs.parse_since(req.arg("until")) if req.arg("until") not in ("", "0") else 0
    tty = bool(row.config["Config"].get("Tty"))
    stamps = req.flag("timestamps")
    kind = (
        "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
    )
    records = logs.container_logs(
        req.eng,
        row.id,
        follow=req.flag("follow"),
        tail=tail,
        since_ns=since,
        until_ns=until,
        reader_alive=lambda: streams.client_alive(req.conn.sock),
    )
    out = req.stream(200, kind)
    for rec in records:
        if rec.stream == "stdout" and not want_out:
            continue
        if rec.stream == "stderr" and not want_err:
            continue
        data = (rec.time + " " + rec.log) if stamps else rec.log
        raw = data.encode()
        out.write(raw if tty else streams.frame(2 if rec.stream == "stderr" else 1, raw))
    return None


# ------------------------------------------------------------------- resize


def resize(req: Request) -> Response:
    from portique.engine import client as mclient
    from portique.engine import containers
    from portique.engine import state as st

    h, w = req.int_arg("h", 0), req.int_arg("w", 0)
    if h <= 0 or w <= 0 or h > 65535 or w > 65535:
        raise InvalidArgument(f"invalid terminal size {h}x{w}")
    row = containers.get(req.eng, req.params["id"])
    if not st.has_process(row.status):
        raise InvalidState(f"Container {row.id} is not running")
    try:
        mclient.request(req.eng.paths(row.id), f"resize {h} {w}")
    except mclient.MonitorGone:
        raise InvalidState(f"Container {row.id} is not running") from None
    return Response(200, b"", "text/plain")


# ---------------------------------------------------------- export, archive


def export(req: Request) -> Response | None:
    from portique.engine import containers, copy

    row = containers.get(req.eng, req.params["id"])
    with copy.container_root(req.eng, row) as root:
        f = StreamFile(req.stream(200, "application/x-tar"))
        copy.export(root, f)  # type: ignore[arg-type]
        f.flush()
    return None


def _path_arg(req: Request) -> str:
    path = req.arg("path")
    if not path:
        raise InvalidArgument("path is required: ?path=/in/the/container")
    if "\x00" in path:
        raise InvalidArgument("invalid path: NUL byte")
    return path


def _stat_header(stat: dict[str, Any]) -> str:
    """Docker's PathStat: the mode as Go's os.FileMode, mtime in RFC 3339."""
    import stat as st

    from portique.engine.logfile import rfc3339_nano

    mode = stat["mode"]
    go = mode & 0o777
    for flag, bit in ((st.S_ISUID, 1 << 23), (st.S_ISGID, 1 << 22), (st.S_ISVTX, 1 << 20)):
        if mode & flag:
            go |= bit
    kinds = {
        st.S_IFDIR: 1 << 31,
        st.S_IFLNK: 1 << 27,
        st.S_IFBLK: 1 << 26,
        st.S_IFCHR: (1 << 26) | (1 << 21),
        st.S_IFIFO: 1 << 25,
        st.S_IFSOCK: 1 << 24,
    }
    go |= kinds.get(st.S_IFMT(mode), 0)
    shaped = {
        "name": stat["name"],
        "size": stat["size"],
        "mode": go,
        "mtime": rfc3339_nano(int(stat["mtime"] * 1e9)),
        "linkTarget": stat["linkTarget"],
    }
    return base64.b64encode(json.dumps(shaped).encode()).decode()


def archive_head(req: Request) -> Response:
    from portique.engine import archives

    path = _path_arg(req)
    stat = archives.stat_path(req.eng, req.params["id"], path)
    return Response(
        200, b"", "application/json", [("X-Docker-Container-Path-Stat", _stat_header(stat))]
    )


def archive_get(req: Request) -> Response | None:
    from portique.engine import archives

    path = _path_arg(req)
    stat = archives.stat_path(req.eng, req.params["id"], path)  # 404 before the stream begins
    req.conn.stream_headers = [("X-Docker-Container-Path-Stat", _stat_header(stat))]
    f = StreamFile(req.stream(200, "application/x-tar"))
    archives.get_archive(req.eng, req.params["id"], path, f)  # type: ignore[arg-type]
    f.flush()
    return None


def archive_put(req: Request) -> Response:
    from portique.engine import archives

    path = _path_arg(req)
    if req.flag("noOverwriteDirNonDir"):
        pass  # portique never replaces a directory with a file (or back): always on
    archives.put_archive(
        req.eng, req.params["id"], path, req.body_stream(), copy_uid_gid=req.flag("copyUIDGID")
    )
    return Response(200, b"", "text/plain")


def _not_found(path: str, cid: str) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {cid}")


ROUTES = [
    Route("POST", "/containers/{id}/attach", attach),
    Route("POST", "/containers/{id}/wait", wait),
    Route("GET", "/containers/{id}/logs", container_logs),
    Route("POST", "/containers/{id}/resize", resize),
    Route("GET", "/containers/{id}/export", export),
    Route("HEAD", "/containers/{id}/archive", archive_head),
    Route("GET", "/containers/{id}/archive", archive_get),
    Route("PUT", "/containers/{id}/archive", archive_put),
]
