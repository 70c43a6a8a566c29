"""`/networks/...`: create, list, inspect, remove, connect, disconnect, prune,
over engine/networks.py (the functions `portique network ...` calls)."""

from __future__ import annotations

from portique.api.fields import Fields
from portique.api.types import Request, Response, Route, json_response
from portique.errors import InvalidArgument

__all__ = ["ROUTES"]

CREATE_FIELDS = (
    "Name",
    "CheckDuplicate",
    "Driver",
    "Scope",
    "Internal",
    "Attachable",
    "Ingress",
    "ConfigOnly",
    "ConfigFrom",
    "IPAM",
    "EnableIPv4",
    "EnableIPv6",
    "Options",
    "Labels",
)
IPAM_FIELDS = ("Driver", "Config", "Options")
POOL_FIELDS = ("Subnet", "IPRange", "Gateway", "AuxiliaryAddresses")


def create(req: Request) -> Response:
    from portique.engine import networks

    body = Fields(req.json(empty_ok=False), "network create", known=CREATE_FIELDS)
    name = body.text("Name", required=True)
    driver = body.text("Driver") or "bridge"
    body.boolean("CheckDuplicate")
    body.boolean("Attachable")  # every portique network is
    body.text("Scope")
    body.obj("ConfigFrom")
    for refused in ("Ingress", "ConfigOnly"):
        if body.boolean(refused):
            raise InvalidArgument(f"network create: {refused} networks are not supported")
    if not body.boolean("EnableIPv4", True):
        raise InvalidArgument("network create: EnableIPv4 false is not supported")
    ipam = Fields(body.obj("IPAM"), "network create: IPAM", known=IPAM_FIELDS)
    if ipam.text("Driver") not in ("", "default"):
        raise InvalidArgument(
            f"network create: IPAM driver {ipam.text('Driver')!r} is not supported"
        )
    if ipam.text_map("Options"):
        raise InvalidArgument("network create: IPAM options are not supported")
    pools = ipam.array("Config")
    if len(pools) > 1:
        raise InvalidArgument("network create: one IPAM pool at most is supported")
    subnet = gateway = None
    for i, raw in enumerate(pools):
        pool = Fields(raw, f"network create: IPAM.Config[{i}]", known=POOL_FIELDS)
        subnet = pool.text("Subnet") or None
        gateway = pool.text("Gateway") or None
        if pool.text("IPRange") or pool.text_map("AuxiliaryAddresses"):
            raise InvalidArgument(
                "network create: IPRange and AuxiliaryAddresses are not supported"
            )
    ident = networks.create(
        req.eng,
        name,
        driver=driver,
        subnet=subnet,
        gateway=gateway,
        internal=body.boolean("Internal"),
        ipv6=body.boolean("EnableIPv6"),
        labels=body.text_map("Labels"),
        options=body.text_map("Options"),
    )
    return json_response({"Id": ident, "Warning": ""}, 201)


def list_networks(req: Request) -> Response:
    from portique.engine import networks

    return json_response(networks.list_networks(req.eng, req.filters()))


def inspect(req: Request) -> Response:
    from portique.engine import networks

    return json_response(networks.inspect(req.eng, req.params["id"]))


def remove(req: Request) -> Response:
    from portique.engine import networks

    networks.remove(req.eng, req.params["id"])
    return Response(204)


def connect(req: Request) -> Response:
    from portique.engine import networks, request

    body = Fields(
        req.json(empty_ok=False), "network connect", known=("Container", "EndpointConfig")
    )
    container = body.text("Container", required=True)
    endpoint = Fields(
        body.obj("EndpointConfig"),
        "network connect: EndpointConfig",
        known=tuple(sorted(request.ENDPOINT_SUPPORTED | request.ENDPOINT_IGNORED)),
    )
    ipam = Fields(
        endpoint.obj("IPAMConfig"),
        "network connect: EndpointConfig.IPAMConfig",
        known=("IPv4Address", "IPv6Address", "LinkLocalIPs"),
    )
    if ipam.text("IPv6Address"):
        raise InvalidArgument("network connect: IPv6 addresses are not supported")
    aliases = endpoint.text_list("Aliases")
    networks.connect(
        req.eng,
        req.params["id"],
        container,
        aliases=aliases,
        ip=ipam.text("IPv4Address") or None,
    )
    return Response(200, b"", "text/plain")


def disconnect(req: Request) -> Response:
    from portique.engine import networks

    body = Fields(req.json(empty_ok=False), "network disconnect", known=("Container", "Force"))
    networks.disconnect(
        req.eng,
        req.params["id"],
        body.text("Container", required=True),
        force=body.boolean("Force"),
    )
    return Response(200, b"", "text/plain")


def prune(req: Request) -> Response:
    from portique.engine import networks

    return json_response({"NetworksDeleted": networks.prune(req.eng, req.filters()) or None})


ROUTES = [
    Route("GET", "/networks", list_networks),
    Route("POST", "/networks/create", create),
    Route("POST", "/networks/prune", prune),
    Route("GET", "/networks/{id}", inspect),
    Route("DELETE", "/networks/{id}", remove),
    Route("POST", "/networks/{id}/connect", connect),
    Route("POST", "/networks/{id}/disconnect", disconnect),
]
