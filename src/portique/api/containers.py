"""Container endpoints: create, list, inspect, the lifecycle, update, rename,
remove, prune, top, changes, stats. Streams (attach, logs, archive, export,
resize, wait) are in container_io.py."""

from __future__ import annotations

import time
from typing import Any

from portique.api.types import NotModified, Request, Response, Route, json_response
from portique.errors import InvalidArgument

__all__ = ["ROUTES"]


def list_containers(req: Request) -> Response:
    from portique.engine import containers

    out = containers.list_containers(
        req.eng,
        all=req.flag("all"),
        limit=req.int_arg("limit", -1),
        size=req.flag("size"),
        filters=req.filters(),
    )
    return json_response(out)


def create(req: Request) -> Response:
    from portique.engine import containers
    from portique.engine.request import split_create_body

    config, host, networking = split_create_body(req.json(empty_ok=False))
    platform = req.arg("platform")
    if platform and platform not in ("linux", "linux/amd64", "linux/x86_64"):
        import platform as pf

        if not platform.endswith(pf.machine()):
            raise InvalidArgument(f"platform {platform!r} is not supported")
    # The API never pulls at create: a missing image is a 404 and the client
    # pulls (POST /images/create), then creates again (as dockerd).
    row = containers.create(req.eng, config, host, networking, name=req.arg("name"), pull="never")
    return json_response({"Id": row.id, "Warnings": []}, 201)


def inspect(req: Request) -> Response:
    from portique.engine import containers

    return json_response(containers.inspect(req.eng, req.params["id"], size=req.flag("size")))


def start(req: Request) -> Response:
    from portique.engine import containers
    from portique.engine import state as st

    row = containers.get(req.eng, req.params["id"])
    if not st.start_needed(row.status, row.name, row.id):
        raise NotModified("container already started")
    from portique.api import markers

    hold = bool(markers.live(req.eng, "attach", row.id))
    containers.start(req.eng, row.id, hold=hold)
    return Response(204)


def _signal(req: Request, name: str) -> int | None:
    from portique.engine import containers

    text = req.arg(name)
    return containers.signal_of(text) if text else None


def stop(req: Request) -> Response:
    from portique.engine import containers
    from portique.engine import state as st

    row = containers.get(req.eng, req.params["id"])
    if not st.has_monitor(row.status):
        raise NotModified("container already stopped")
    timeout = req.int_arg("t", -2) if req.has("t") else None
    containers.stop(req.eng, row.id, None if timeout == -2 else timeout, _signal(req, "signal"))
    return Response(204)


def restart(req: Request) -> Response:
    from portique.engine import containers

    timeout = req.int_arg("t", 0) if req.has("t") else None
    containers.restart(req.eng, req.params["id"], timeout)
    return Response(204)


def kill(req: Request) -> Response:
    import signal

    from portique.engine import containers

    containers.kill(req.eng, req.params["id"], _signal(req, "signal") or signal.SIGKILL)
    return Response(204)


def pause(req: Request) -> Response:
    from portique.engine import containers

    containers.pause(req.eng, req.params["id"])
    return Response(204)


def unpause(req: Request) -> Response:
    from portique.engine import containers

    containers.unpause(req.eng, req.params["id"])
    return Response(204)


def rename(req: Request) -> Response:
    from portique.engine import containers

    new = req.arg("name")
    if not new:
        raise InvalidArgument("name is required")
    containers.rename(req.eng, req.params["id"], new)
    return Response(204)


def update(req: Request) -> Response:
    from portique.engine import update as upd

    warnings = upd.update(req.eng, req.params["id"], req.json())
    return json_response({"Warnings": warnings})


def remove(req: Request) -> Response:
    from portique.engine import containers

    if req.flag("link"):
        raise InvalidArgument("links are not supported by portique")
    containers.remove(req.eng, req.params["id"], force=req.flag("force"), volumes=req.flag("v"))
    return Response(204)


def prune(req: Request) -> Response:
    from portique.engine import containers

    filters = req.filters()
    if filters:
        from portique.engine import filters as flt

        flt.check(filters, ())  # containers.prune takes none: Docker's error for any
    from portique.engine import state as st

    sizes = {
        row.id: containers.container_size(req.eng, row.id)
        for row in containers.list_all(req.eng)
        if st.can_remove(row.status)
    }
    removed = containers.prune(req.eng)
    reclaimed = sum(sizes.get(cid, 0) for cid in removed)
    return json_response({"ContainersDeleted": removed or None, "SpaceReclaimed": reclaimed})


def top(req: Request) -> Response:
    from portique.engine import stats

    ps_args = req.arg("ps_args").split()
    titles, processes = stats.top(req.eng, req.params["id"], ps_args)
    return json_response({"Titles": titles, "Processes": processes})


def changes(req: Request) -> Response:
    from portique.engine import commit

    return json_response(commit.changes(req.eng, req.params["id"]))


def stats(req: Request) -> Response | None:
    from portique.engine import containers
    from portique.engine import stats as sts

    row = containers.get(req.eng, req.params["id"])
    stream = req.flag("stream", True) and not req.flag("one-shot")
    prev = None
    if not stream:
        first = sts.api_stats(req.eng, row, None)
        if req.flag("one-shot"):
            return json_response(first)
        time.sleep(1.0)  # Docker's stream=false gives one sample with a previous one
        return json_response(sts.api_stats(req.eng, containers.refresh(req.eng, row), first))
    out = req.stream()
    for _ in range(1 << 40):
        row = containers.refresh(req.eng, row)
        cur = sts.api_stats(req.eng, row, prev)
        out.write(json_dumps(cur))
        prev = cur
        time.sleep(1.0)
    return None


def json_dumps(value: Any) -> bytes:
    import json

    return json.dumps(value).encode() + b"\n"


ROUTES = [
    Route("GET", "/containers/json", list_containers),
    Route("POST", "/containers/create", create),
    Route("POST", "/containers/prune", prune),
    Route("GET", "/containers/{id}/json", inspect),
    Route("POST", "/containers/{id}/start", start),
    Route("POST", "/containers/{id}/stop", stop),
    Route("POST", "/containers/{id}/restart", restart),
    Route("POST", "/containers/{id}/kill", kill),
    Route("POST", "/containers/{id}/pause", pause),
    Route("POST", "/containers/{id}/unpause", unpause),
    Route("POST", "/containers/{id}/rename", rename),
    Route("POST", "/containers/{id}/update", update),
    Route("DELETE", "/containers/{id}", remove),
    Route("GET", "/containers/{id}/top", top),
    Route("GET", "/containers/{id}/changes", changes),
    Route("GET", "/containers/{id}/stats", stats),
]
