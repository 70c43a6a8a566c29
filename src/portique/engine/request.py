"""A container create request from a hostile client, checked before the engine
sees it: Docker's `POST /containers/create` body (Config at the top level,
`HostConfig`, `NetworkingConfig`).

Every field the engine honours is checked for its JSON type, and every
HostConfig field portique does not implement is refused by name when it
carries a value (clients send many of them empty: those pass). A field
Docker does not know at all is refused too, so a typo is not silently
dropped. The CLI builds these shapes itself (cli/docker/commands/create.py)
and calls the same `containers.create`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portique.errors import InvalidArgument

__all__ = ["HOST_SUPPORTED", "split_create_body"]

_STR = (str,)
_INT = (int,)
_BOOL = (bool,)
_LIST = (list,)
_DICT = (dict,)
_STR_OR_LIST = (str, list)

# Config fields: the engine's, with their JSON types (None is always allowed).
CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "Hostname": _STR,
    "Domainname": _STR,
    "User": _STR,
    "AttachStdin": _BOOL,
    "AttachStdout": _BOOL,
    "AttachStderr": _BOOL,
    "Tty": _BOOL,
    "OpenStdin": _BOOL,
    "StdinOnce": _BOOL,
    "Env": _LIST,
    "Cmd": _STR_OR_LIST,
    "Image": _STR,
    "Volumes": _DICT,
    "WorkingDir": _STR,
    "Entrypoint": _STR_OR_LIST,
    "Labels": _DICT,
    "StopSignal": _STR,
    "StopTimeout": _INT,
    "ExposedPorts": _DICT,
    "Healthcheck": _DICT,
    "Shell": _LIST,
    "ArgsEscaped": _BOOL,
    "OnBuild": _LIST,
}
# Docker's Config fields the engine ignores when empty and refuses when set.
CONFIG_UNSUPPORTED = frozenset({"NetworkDisabled", "MacAddress"})

HOST_SUPPORTED: dict[str, tuple[type, ...]] = {
    "Binds": _LIST,
    "Mounts": _LIST,
    "Tmpfs": _DICT,
    "NetworkMode": _STR,
    "RestartPolicy": _DICT,
    "AutoRemove": _BOOL,
    "CapAdd": _LIST,
    "CapDrop": _LIST,
    "Privileged": _BOOL,
    "ReadonlyRootfs": _BOOL,
    "SecurityOpt": _LIST,
    "Init": _BOOL,
    "Memory": _INT,
    "MemorySwap": _INT,
    "MemoryReservation": _INT,
    "NanoCpus": _INT,
    "CpuShares": _INT,
    "CpuQuota": _INT,
    "CpuPeriod": _INT,
    "CpusetCpus": _STR,
    "BlkioWeight": _INT,
    "PidsLimit": _INT,
    "Ulimits": _LIST,
    "LogConfig": _DICT,
    "PortBindings": _DICT,
    "PublishAllPorts": _BOOL,
    "ExtraHosts": _LIST,
    "Dns": _LIST,
    "DnsSearch": _LIST,
    "DnsOptions": _LIST,
    # The terminal's size at create (docker run -t sends it): used at attach.
    "ConsoleSize": _LIST,
}
# Docker's other HostConfig fields: accepted empty, refused by name when set.
HOST_UNSUPPORTED = frozenset(
    [
        "Annotations",
        "BlkioDeviceReadBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceWriteIOps",
        "BlkioWeightDevice",
        "CgroupParent",
        "Cgroup",
        "CgroupnsMode",
        "ContainerIDFile",
        "CpuCount",
        "CpuPercent",
        "CpuRealtimePeriod",
        "CpuRealtimeRuntime",
        "CpusetMems",
        "DeviceCgroupRules",
        "DeviceRequests",
        "Devices",
        "GroupAdd",
        "IOMaximumBandwidth",
        "IOMaximumIOps",
        "IpcMode",
        "Isolation",
        "KernelMemory",
        "KernelMemoryTCP",
        "Links",
        "MaskedPaths",
        "MemorySwappiness",
        "OomKillDisable",
        "OomScoreAdj",
        "PidMode",
        "ReadonlyPaths",
        "Runtime",
        "ShmSize",
        "StorageOpt",
        "Sysctls",
        "UTSMode",
        "UsernsMode",
        "VolumeDriver",
        "VolumesFrom",
    ]
)
# Values some clients send where "unset" is meant.
_DEFAULTISH = {
    "CgroupnsMode": ("private", "host"),
    "IpcMode": ("private", "shareable"),
    "Isolation": ("default",),
    "Runtime": ("runc", "portique"),
    "MemorySwappiness": (-1,),
}
# An endpoint's fields: the engine's, and Docker's that are refused when set.
ENDPOINT_SUPPORTED = frozenset({"Aliases", "IPAMConfig"})
ENDPOINT_IGNORED = frozenset(
    [
        "Links",
        "MacAddress",
        "DriverOpts",
        "GwPriority",
        "NetworkID",
        "EndpointID",
        "Gateway",
        "IPAddress",
        "IPPrefixLen",
        "IPv6Gateway",
        "GlobalIPv6Address",
        "GlobalIPv6PrefixLen",
        "DNSNames",
    ]
)


def _empty(value: Any) -> bool:
    if value in (None, "", 0, False):
        return True
    if isinstance(value, list):
        return all(_empty(v) for v in value)
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    return False


def _check_type(where: str, key: str, value: Any, types: tuple[type, ...]) -> None:
    if value is None:
        return
    ok = isinstance(value, types) and not (bool not in types and isinstance(value, bool))
    if not ok:
        want = " or ".join(
            {str: "string", int: "integer", bool: "boolean", list: "array", dict: "object"}[t]
            for t in types
        )
        raise InvalidArgument(
            f"invalid {where}.{key}: want {want}, got {type(value).__name__.replace('NoneType', 'null')}"
        )


def split_create_body(
    body: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """(Config, HostConfig, NetworkingConfig) of a create body, checked."""
    config: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("HostConfig", "NetworkingConfig"):
            continue
        if key in CONFIG_TYPES:
            _check_type("Config", key, value, CONFIG_TYPES[key])
            config[key] = value
        elif key in CONFIG_UNSUPPORTED:
            if not _empty(value):
                raise InvalidArgument(f"Config.{key} is not supported by portique")
        else:
            raise InvalidArgument(f"unknown field Config.{key}")
    for key in ("Env", "Shell", "OnBuild"):
        if any(not isinstance(v, str) for v in config.get(key) or []):
            raise InvalidArgument(f"invalid Config.{key}: want an array of strings")
    for key in ("Cmd", "Entrypoint"):
        if isinstance(config.get(key), list) and any(not isinstance(v, str) for v in config[key]):
            raise InvalidArgument(f"invalid Config.{key}: want an array of strings")
    if isinstance(config.get("Labels"), dict) and any(
        not isinstance(v, str) for v in config["Labels"].values()
    ):
        raise InvalidArgument("invalid Config.Labels: values must be strings")
    raw_host = body.get("HostConfig")
    raw_host = {} if raw_host is None else raw_host
    if not isinstance(raw_host, dict):
        raise InvalidArgument("invalid HostConfig: want an object")
    host: dict[str, Any] = {}
    for key, value in raw_host.items():
        if key in HOST_SUPPORTED:
            _check_type("HostConfig", key, value, HOST_SUPPORTED[key])
            if value is not None:
                host[key] = value
        elif key in HOST_UNSUPPORTED:
            if not _empty(value) and value not in _DEFAULTISH.get(key, ()):
                raise InvalidArgument(
                    f"HostConfig.{key} is not supported by portique (got {value!r:.60})"
                )
        else:
            raise InvalidArgument(f"unknown field HostConfig.{key}")
    for key in ("Binds", "CapAdd", "CapDrop", "SecurityOpt", "ExtraHosts", "Dns", "DnsSearch"):
        if any(not isinstance(v, str) for v in host.get(key) or []):
            raise InvalidArgument(f"invalid HostConfig.{key}: want an array of strings")
    if host.get("NetworkMode") in ("default", ""):
        host["NetworkMode"] = "bridge"
    log = host.get("LogConfig") or {}
    if log.get("Type") not in (None, "", "json-file"):
        raise InvalidArgument(
            f"HostConfig.LogConfig.Type {log.get('Type')!r} is not supported: portique logs json-file"
        )
    host["LogConfig"] = {"Type": "json-file", "Config": log.get("Config") or {}}
    networking = body.get("NetworkingConfig")
    if networking is not None and not isinstance(networking, dict):
        raise InvalidArgument("invalid NetworkingConfig: want an object")
    return config, host, _endpoints(host, networking or {})


def _endpoints(host: dict[str, Any], networking: Mapping[str, Any]) -> dict[str, Any] | None:
    """NetworkingConfig with the engine's endpoint fields only; an empty
    endpoint for the container's own network (clients send one) is dropped."""
    for key in networking:
        if key != "EndpointsConfig":
            raise InvalidArgument(f"unknown field NetworkingConfig.{key}")
    eps = networking.get("EndpointsConfig") or {}
    if not isinstance(eps, dict):
        raise InvalidArgument("invalid NetworkingConfig.EndpointsConfig: want an object")
    mode = host.get("NetworkMode") or "bridge"
    out: dict[str, Any] = {}
    for name, ep in eps.items():
        net = "bridge" if name == "default" else str(name)
        if ep is None:
            ep = {}
        if not isinstance(ep, dict):
            raise InvalidArgument(f"invalid endpoint {name!r}: want an object")
        entry: dict[str, Any] = {}
        for key, value in ep.items():
            if key in ENDPOINT_SUPPORTED:
                if value is not None:
                    entry[key] = value
            elif key in ENDPOINT_IGNORED:
                if not _empty(value):
                    raise InvalidArgument(
                        f"NetworkingConfig.EndpointsConfig.{name}.{key} is not supported by portique"
                    )
            else:
                raise InvalidArgument(
                    f"unknown field NetworkingConfig.EndpointsConfig.{name}.{key}"
                )
        aliases = entry.get("Aliases")
        if aliases is not None and (
            not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases)
        ):
            raise InvalidArgument(f"invalid endpoint {name!r}: Aliases must be strings")
        ipam = entry.get("IPAMConfig")
        if ipam is not None:
            if not isinstance(ipam, dict) or any(
                k not in ("IPv4Address", "IPv6Address", "LinkLocalIPs") for k in ipam
            ):
                raise InvalidArgument(f"invalid endpoint {name!r}: IPAMConfig")
            v4 = ipam.get("IPv4Address") or ""
            if not isinstance(v4, str) or ipam.get("IPv6Address") or ipam.get("LinkLocalIPs"):
                raise InvalidArgument(f"endpoint {name!r}: only an IPv4Address is supported")
            entry["IPAMConfig"] = {"IPv4Address": v4} if v4 else None
            if not v4:
                del entry["IPAMConfig"]
        if not entry.get("Aliases"):
            entry.pop("Aliases", None)
        if net == mode and not entry:
            continue
        out[net] = {"Aliases": entry.get("Aliases"), **entry}
    return {"EndpointsConfig": out} if out else None
