"""`/system/df` and `/auth`: disk usage by object (engine/system.py's `df`,
what `portique system df -v` shows) and a registry login check
(engine/registry.py's `login`, what `portique login` does before storing).

`/auth` stores nothing: a docker client keeps its own credentials and sends
them with each pull and push (`X-Registry-Auth`).
"""

from __future__ import annotations

from portique.api.types import Request, Response, Route, json_response
from portique.errors import InvalidArgument

__all__ = ["ROUTES"]

DF_TYPES = {
    "container": "Containers",
    "image": "Images",
    "volume": "Volumes",
    "build-cache": "BuildCache",
}


def disk_usage(req: Request) -> Response:
    from portique.engine import system

    kinds = req.query.get("type", [])
    for kind in kinds:
        if kind not in DF_TYPES:
            raise InvalidArgument(f"invalid type {kind!r}: use {', '.join(DF_TYPES)}")
    usage = system.df(req.eng)
    for kind, key in DF_TYPES.items():
        if kinds and kind not in kinds:
            usage[key] = None
    return json_response(usage)


def auth(req: Request) -> Response:
    from portique.api.images import auth_config, insecure_registries
    from portique.engine import registry

    creds = auth_config(req.json(empty_ok=False), "auth")
    if creds.get("identitytoken") or creds.get("registrytoken"):
        raise InvalidArgument("auth: identity and registry tokens are not supported")
    registry.login(
        creds.get("serveraddress", "") or "docker.io",
        creds.get("username", ""),
        creds.get("password", ""),
        insecure=insecure_registries(),
    )
    return json_response({"Status": "Login Succeeded", "IdentityToken": ""})


ROUTES = [
    Route("GET", "/system/df", disk_usage),
    Route("POST", "/auth", auth),
]
