"""Docker-shaped views of networks (`network inspect`)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from portique.network.networks import OPT_BRIDGE_NAME

if TYPE_CHECKING:
    from portique.network.networks import Networks


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
