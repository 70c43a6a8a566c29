"""Docker-shaped views of networks (`network inspect`)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from portique.network.networks import OPT_BRIDGE_NAME

if TYPE_CHECKING:
    from portique.network.networks import Networks
    from portique.network.types import NetworkRecord


def inspect_json(nets: Networks, name_or_id: str) -> dict[str, Any]:
    """Docker's `network inspect` object."""
    net = nets.inspect(name_or_id)
    containers = {
        ep.container_id: {
            "Name": ep.container_name,
            "EndpointID": hashlib.sha256(f"{net.id}/{ep.container_id}".encode()).hexdigest(),
            "MacAddress": ep.mac,
            "IPv4Address": f"{ep.ip}/{ep.prefixlen}",
            "IPv6Address": "",
        }
        for ep in nets.network_endpoints(net.id)
    }
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv6": False,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}],
        },
        "Internal": net.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": {OPT_BRIDGE_NAME: net.bridge, **net.options},
        "Labels": net.labels,
    }


# Docker lists two networks that are modes, not bridges: `host` (driver host) and
# `none` (driver null). They live in no table; their IDs are stable per engine root.
PSEUDO_DRIVERS = {"host": "host", "none": "null"}


def pseudo_networks(nets: Networks) -> list[NetworkRecord]:
    """`host` and `none`, made when the default bridge was (Docker's clients
    parse their Created time, so it is never empty)."""
    from portique.network.types import NetworkRecord

    created = nets.ensure_default().created or "1970-01-01T00:00:00Z"
    return [
        NetworkRecord(
            id=hashlib.sha256(f"portique {nets.table} network {name}".encode()).hexdigest(),
            name=name,
            driver=driver,
            bridge="",
            subnet="",
            gateway="",
            internal=False,
            is_default=True,
            created=created,
        )
        for name, driver in PSEUDO_DRIVERS.items()
    ]


def pseudo_json(rec: NetworkRecord) -> dict[str, Any]:
    return {
        "Name": rec.name,
        "Id": rec.id,
        "Created": rec.created,
        "Scope": "local",
        "Driver": rec.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": None},
        "Internal": False,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {},
        "Options": {},
        "Labels": {},
    }
