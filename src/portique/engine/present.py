"""Docker's words and shapes for containers: the STATUS text, list rows, inspect JSON.

The one presenter of a container's state: "Up 3 minutes (Paused)", "Exited (0)
2 seconds ago", "Restarting (1) 5 seconds ago" come from `status_text` only,
for `ps` and for the API's list alike.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from portique.engine import state as st
from portique.engine.db import ContainerRow
from portique.engine.logfile import rfc3339_nano
from portique.engine.state import Status
from portique.errors import InvalidArgument

if TYPE_CHECKING:
    from portique.engine.engine import Engine
from portique.units import human_duration

ZERO_TIME = "0001-01-01T00:00:00Z"


def status_text(row: ContainerRow, now: float | None = None) -> str:
    """Docker's STATUS column: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created"."""
    now = time.time() if now is None else now
    status = Status(row.status)
    if st.has_process(status):
        up = f"Up {human_duration(now - row.started_at)}"
        if status == Status.PAUSED:
            return up + " (Paused)"
        from portique.engine.health import status_of

        health = status_of(row)
        if health:
            return f"{up} ({'health: starting' if health == 'starting' else health})"
        return up
    words, since_exit = _WORDS[status]
    text = words.format(code=row.exit_code)
    if since_exit and row.finished_at:
        text += f" {human_duration(now - row.finished_at)} ago"
    return text


# Docker's words for the statuses without a process, and whether the time since
# the last exit follows them (removing and dead are Docker's own; portique never
# writes them, see engine/state.py).
_WORDS = {
    Status.CREATED: ("Created", False),
    Status.RESTARTING: ("Restarting ({code})", True),
    Status.EXITED: ("Exited ({code})", True),
    Status.REMOVING: ("Removal In Progress", False),
    Status.DEAD: ("Dead", False),
}


def state_word(row: ContainerRow) -> str:
    """Docker's STATE column and `State.Status`: the status itself."""
    return str(Status(row.status))


def command_text(row: ContainerRow) -> str:
    config = row.config["Config"]
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    return " ".join(argv)


def summary(row: ContainerRow, *, size_rw: int | None = None) -> dict[str, Any]:
    """Docker's ContainerSummary (`GET /containers/json`, what `ps` lists)."""
    live = st.has_process(row.status)
    stored = row.config.get("NetworkSettings") or {}
    ports = [
        {
            "IP": b.get("HostIp") or "",
            "PrivatePort": int(key.partition("/")[0]),
            "PublicPort": int(b.get("HostPort") or 0),
            "Type": key.partition("/")[2] or "tcp",
        }
        for key, bindings in ((stored.get("Ports") or {}).items() if live else ())
        for b in bindings or ()
    ]
    out: dict[str, Any] = {
        "Id": row.id,
        "Names": [f"/{row.name}"],
        "Image": row.image,
        "ImageID": row.image_id,
        "Command": command_text(row),
        "Created": int(row.created),
        "Ports": ports,
        "Labels": dict(row.config["Config"].get("Labels") or {}),
        "State": state_word(row),
        "Status": status_text(row),
        "HostConfig": {"NetworkMode": row.config["HostConfig"].get("NetworkMode") or ""},
        "NetworkSettings": {"Networks": dict(stored.get("Networks") or {}) if live else {}},
        "Mounts": _mounts(row),
    }
    if size_rw is not None:
        out["SizeRw"] = size_rw
    return out


# ------------------------------------------------------------------ filters


def matches(
    row: ContainerRow, filters: Mapping[str, Sequence[str]], by_ref: Mapping[str, ContainerRow]
) -> bool:
    """Docker's container filters (keys checked by containers.list_containers):
    within a key any value may match, except `label`, where every one must."""
    for key, values in filters.items():
        match = all if key == "label" else any
        if not match(_match_one(row, key, v, by_ref) for v in values):
            return False
    return True


def _match_one(row: ContainerRow, key: str, value: str, by_ref: Mapping[str, ContainerRow]) -> bool:
    if key == "id":
        return row.id.startswith(value)
    if key == "name":
        import re

        try:
            return re.search(value, row.name) is not None
        except re.error:
            return value in row.name
    if key == "label":
        labels = row.config["Config"].get("Labels") or {}
        k, sep, v = value.partition("=")
        return k in labels and (not sep or labels[k] == v)
    if key == "status":
        return row.status == value
    if key == "exited":
        return row.status == Status.EXITED and str(row.exit_code) == value
    if key == "ancestor":
        return row.image == value or row.image_id.removeprefix("sha256:").startswith(
            value.removeprefix("sha256:")
        )
    if key in ("before", "since"):
        other = by_ref.get(value)
        if other is None:
            return False
        return row.created < other.created if key == "before" else row.created > other.created
    if key == "volume":
        return any(
            value in (p.get("Name"), p.get("Destination"), p.get("Source"))
            for p in row.config.get("MountPoints") or []
        )
    if key == "network":
        return value in _network_names(row)
    if key == "publish":
        return value in (row.config["HostConfig"].get("PortBindings") or {})
    if key == "expose":
        return value in (row.config["Config"].get("ExposedPorts") or {})
    if key == "health":
        from portique.engine.health import status_of

        return (status_of(row) or "none") == value
    return False


def _network_names(row: ContainerRow) -> set[str]:
    """The networks a container is on: its mode, the further networks it was
    created with, and (while it runs) those `network connect` added; their ids too."""
    names = {str(row.config["HostConfig"].get("NetworkMode") or "")}
    eps = (row.config.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    names.update(str(n) for n in eps)
    if st.has_process(row.status):
        for name, ep in ((row.config.get("NetworkSettings") or {}).get("Networks") or {}).items():
            names.add(str(name))
            if isinstance(ep, dict) and ep.get("NetworkID"):
                names.add(str(ep["NetworkID"]))
    return names


def port_filter(key: str, value: str) -> list[str]:
    """`publish=80`, `expose=8000-8002/udp`: the port keys ("80/tcp") they name."""
    from portique.engine import run_opts

    try:
        return run_opts.expose_ports(value)
    except InvalidArgument:
        raise InvalidArgument(f"invalid filter '{key}={value}'") from None


# ------------------------------------------------------------------ inspect


def _time(t: float) -> str:
    return rfc3339_nano(int(t * 1e9)) if t else ZERO_TIME


def _health(row: ContainerRow) -> dict[str, Any]:
    """State.Health, for a container with a healthcheck."""
    from portique.engine.health import state_of

    h = state_of(row)
    return {} if h is None else {"Health": h}


def inspect(eng: Engine, row: ContainerRow) -> dict[str, Any]:
    config = dict(row.config["Config"])
    host = {k: v for k, v in row.config["HostConfig"].items() if k != "SeccompProfile"}
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    paths = eng.paths(row.id)
    mounts = _mounts(row)
    network = host.get("NetworkMode") or "bridge"
    stored = row.config.get("NetworkSettings") or {}
    live = st.has_process(row.status)
    nets = stored.get("Networks") if live else None
    if nets:
        nets = {name: _with_short_id(row.id, name, ep) for name, ep in nets.items()}
    else:
        nets = _requested_networks(row, network)
    return {
        "Id": row.id,
        "Created": _time(row.created),
        "Path": argv[0] if argv else "",
        "Args": argv[1:],
        "State": {
            "Status": state_word(row),
            "Running": live,
            "Paused": row.status == Status.PAUSED,
            "Restarting": row.status == Status.RESTARTING,
            "OOMKilled": row.oom_killed,
            "Dead": row.status == Status.DEAD,
            "Pid": row.pid if live else 0,
            "ExitCode": row.exit_code,
            "Error": row.error,
            "StartedAt": _time(row.started_at),
            "FinishedAt": _time(row.finished_at),
            **_health(row),
        },
        "Image": row.image_id,
        "ResolvConfPath": str(paths.dir / "resolv.conf"),
        "HostnamePath": str(paths.dir / "hostname"),
        "HostsPath": str(paths.dir / "hosts"),
        "LogPath": str(paths.log),
        "Name": f"/{row.name}",
        "RestartCount": row.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "MergedDir": str(paths.dir / "rootfs"),
                "UpperDir": str(paths.dir / "upper"),
                "WorkDir": str(paths.dir / "work"),
            },
        },
        "Mounts": mounts,
        "Config": config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": f"/proc/{row.pid}/ns/net" if row.pid and live else "",
            "Ports": (stored.get("Ports") or {}) if live else {},
            "Gateway": stored.get("Gateway", "") if live else "",
            "IPAddress": stored.get("IPAddress", "") if live else "",
            "IPPrefixLen": stored.get("IPPrefixLen", 0) if live else 0,
            "MacAddress": stored.get("MacAddress", "") if live else "",
            "Networks": nets,
        },
    }


def _with_short_id(cid: str, network: str, ep: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as Docker shows it: on a user-defined network, the container's
    short id is one of its aliases (the embedded DNS answers it; docker-compose
    looks for it to know a container's endpoints are its own)."""
    if network in ("bridge", "host", "none", "default"):
        return ep
    aliases = list(ep.get("Aliases") or [])
    if cid[:12] not in aliases:
        aliases.append(cid[:12])
    return {**ep, "Aliases": aliases}


def _requested_networks(row: ContainerRow, mode: str) -> dict[str, Any]:
    """A container without a process: the networks it will join at start, with
    the aliases and addresses asked for."""
    from portique.engine.network import requests_of
    from portique.network.types import NetworkRequest

    out = {}
    # `none` and `host` join nothing, but Docker lists the mode.
    for req in requests_of(row.config) or [NetworkRequest(mode)]:
        ep: dict[str, Any] = {
            "IPAMConfig": {"IPv4Address": req.ip} if req.ip else None,
            "Links": None,
            "Aliases": list(req.aliases) or None,
            "NetworkID": "",
            "EndpointID": "",
            "Gateway": "",
            "IPAddress": "",
            "IPPrefixLen": 0,
            "MacAddress": "",
        }
        out[req.network] = _with_short_id(row.id, req.network, ep)
    return out


def _mounts(row: ContainerRow) -> list[dict[str, Any]]:
    """Docker's MountPoint objects (inspect's and the summary's `Mounts`)."""
    mounts: list[dict[str, Any]] = []
    for p in row.config.get("MountPoints") or []:
        m = {
            "Type": p["Type"],
            "Source": p.get("Source", ""),
            "Destination": p["Destination"],
            "Mode": p.get("Mode", ""),
            "RW": p.get("RW", True),
            "Propagation": p.get("Propagation", ""),
        }
        if p["Type"] == "volume":
            m = {
                "Type": "volume",
                "Name": p["Name"],
                **{k: v for k, v in m.items() if k != "Type"},
                "Driver": "local",
            }
        mounts.append(m)
    return mounts
