"""Value types of the network layer: networks, endpoints, published ports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

DEFAULT_NETWORK: Final = "bridge"  # Docker's default network, made on first use
MAX_NAME: Final = 255  # in a network name or alias: a DNS name's length at most


class Proto(StrEnum):
    TCP = "tcp"
    UDP = "udp"


@dataclass(frozen=True, slots=True)
class NetworkRecord:
    """One network as stored in the database."""

    id: str  # 64 hex
    name: str
    driver: str
    bridge: str  # the Linux bridge device
    subnet: str  # "172.18.0.0/16"
    gateway: str  # "172.18.0.1"
    internal: bool
    is_default: bool
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    mtu: int = 1500
    created: str = ""  # RFC 3339

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/", 1)[1])

    @property
    def resolves_names(self) -> bool:
        """Docker's rule: only user-defined networks have the embedded DNS."""
        return not self.is_default


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A container's attachment to one network (and its IP lease)."""

    network_id: str
    network: str  # network name
    container_id: str
    container_name: str
    ip: str
    prefixlen: int
    gateway: str | None  # None on --internal networks: no default route
    mac: str
    host_veth: str  # veth end in the host namespace, a bridge port
    ifname: str  # name inside the container: eth0, eth1, ...
    aliases: tuple[str, ...] = ()
    netns: str = ""


@dataclass(frozen=True, slots=True)
class PortMapping:
    """`-p [host_ip:][host_port:]container_port[/proto]`; host_port 0 means "pick one"."""

    container_port: int
    host_port: int = 0
    host_ip: str = "0.0.0.0"
    proto: Proto = Proto.TCP

    def __str__(self) -> str:
        # Docker's `port` output: "80/tcp -> 0.0.0.0:8080"
        return f"{self.container_port}/{self.proto} -> {self.host_ip}:{self.host_port}"


@dataclass(frozen=True, slots=True)
class NetworkRequest:
    """One network a container asks for (`--network NAME --network-alias A --ip X`)."""

    network: str = DEFAULT_NETWORK
    aliases: tuple[str, ...] = ()
    ip: str | None = None
    mac: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerNetwork:
    """What setup_container made: endpoints, published ports, and the files to write."""

    endpoints: tuple[Endpoint, ...]
    ports: tuple[PortMapping, ...]
    resolv_conf: str
    hosts: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class PublishedPort:
    """A mapping as installed: the container address it forwards to."""

    container_id: str
    container_ip: str
    mapping: PortMapping


__all__ = [
    "ContainerNetwork",
    "Endpoint",
    "NetworkRecord",
    "NetworkRequest",
    "PortMapping",
    "Proto",
    "PublishedPort",
]
