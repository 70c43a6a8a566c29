"""`/volumes/...`: create, list, inspect, remove, prune, over engine/volumes.py
(the functions `portique volume ...` calls)."""

from __future__ import annotations

from portique.api.fields import Fields
from portique.api.types import Request, Response, Route, json_response
from portique.errors import InvalidArgument

__all__ = ["ROUTES"]


def create(req: Request) -> Response:
    from portique.engine import volumes

    body = Fields(
        req.json(),
        "volume create",
        known=("Name", "Driver", "DriverOpts", "Labels", "ClusterVolumeSpec"),
    )
    if body.obj("ClusterVolumeSpec"):
        raise InvalidArgument("volume create: cluster volumes are not supported")
    out = volumes.create(
        req.eng,
        body.text("Name"),
        driver=body.text("Driver") or "local",
        labels=body.text_map("Labels"),
        options=body.text_map("DriverOpts"),
    )
    return json_response(out, 201)


def list_volumes(req: Request) -> Response:
    from portique.engine import volumes

    return json_response(
        {"Volumes": volumes.list_volumes(req.eng, req.filters()), "Warnings": None}
    )


def inspect(req: Request) -> Response:
    from portique.engine import volumes

    return json_response(volumes.inspect(req.eng, req.params["name"]))


def remove(req: Request) -> Response:
    from portique.engine import volumes

    volumes.remove_volume(req.eng, req.params["name"], force=req.flag("force"))
    return Response(204)


def prune(req: Request) -> Response:
    from portique.engine import volumes

    filters = req.filters()
    if req.api_version < (1, 42):
        # Before API 1.42 a prune took every unused volume, named ones too
        # (dockerd adds all=true for those clients).
        filters.setdefault("all", ["true"])
    removed, reclaimed = volumes.prune_report(req.eng, filters=filters)
    return json_response({"VolumesDeleted": removed or None, "SpaceReclaimed": reclaimed})


ROUTES = [
    Route("GET", "/volumes", list_volumes),
    Route("POST", "/volumes/create", create),
    Route("POST", "/volumes/prune", prune),
    Route("GET", "/volumes/{name}", inspect),
    Route("DELETE", "/volumes/{name}", remove),
]
